// A second S3 implementation: moto's server (PyPI, in the tests' virtualenv),
// for behaviour that differs between servers within what S3 allows, such as
// a listing in XML that turns a carriage return in a name into a line feed.
import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { answers, freePort } from '../../scripts/s3-server.mjs'
import { python } from '../helpers'
import { type S3Endpoint, s3Client } from './s3'

export type MotoServer = S3Endpoint & { stop(): Promise<void> }

/** moto's S3 server on a free loopback port, with `bucket` made. */
export async function startMoto(bucket: string): Promise<MotoServer> {
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  // Its log (a line per request) goes to a file: a pipe would fill while a
  // sync call holds this process's event loop, and the server would stall.
  const dir = mkdtempSync(join(tmpdir(), 'nfc-moto-'))
  const logFile = join(dir, 'server.log')
  const fd = openSync(logFile, 'a')
  const child = spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', fd, fd] })
  closeSync(fd)
  const log = () => readFileSync(logFile, 'utf8').slice(-4000)
  // Unref'd, and killed at exit: a test that forgets stop() still ends.
  child.unref()
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const server: MotoServer = {
    endpoint,
    accessKeyId: 'motokey',
    secretAccessKey: 'motosecret',
    region: 'us-east-1',
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'motokey',
      AWS_SECRET_ACCESS_KEY: 'motosecret',
      AWS_REGION: 'us-east-1',
      AWS_ALLOW_HTTP: 'true',
    },
    async stop() {
      process.removeListener('exit', kill)
      // Referenced while we wait, or the loop could end before the exit arrives.
      child.ref()
      kill()
      await gone
      rmSync(dir, { recursive: true, force: true })
    },
  }
  for (const deadline = Date.now() + 30_000; ; ) {
    if (child.exitCode !== null) throw new Error(`moto's server exited at start (is moto[server] in ${python}?):\n${log()}`)
    if (await answers(port)) break
    if (Date.now() > deadline) {
      await server.stop()
      throw new Error(`moto's server did not answer on ${endpoint} in 30 s:\n${log()}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  await s3Client(server).send(new CreateBucketCommand({ Bucket: bucket }))
  return server
}
