// Types for s3-server.mjs, so TypeScript tests can import it under strict.

export interface S3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  region: 'us-east-1'
  /** AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP */
  env: Record<string, string>
  /** The current versitygw process; changes on restart(). */
  readonly pid: number
  /** The posix backend's root: one folder per bucket, one file per object. */
  dataDir: string
  /** Stops the server and removes its directories. */
  stop(): Promise<void>
  /** SIGKILL, as a crash would; the data stays for restart(). */
  kill(): Promise<void>
  /** Starts it again on the same port over the same data. */
  restart(): Promise<void>
}

/** Path of the versitygw binary under <repo>/.tools/. */
export const VERSITYGW: string
/** Builds versitygw with `go install` if it is not there yet; returns its path. */
export function ensureVersitygw(): Promise<string>
/** Starts versitygw on a free loopback port over a fresh temporary directory made under `dir`. */
export function startS3Server(options?: { dir?: string }): Promise<S3Server>
/** A port on 127.0.0.1 that nothing listens on now. */
export function freePort(): Promise<number>
/** Whether an HTTP server on 127.0.0.1:`port` gives any answer. */
export function answers(port: number): Promise<boolean>
/** Creates a bucket owned by the server's root user. */
export function createBucket(server: S3Server, name: string): Promise<void>
