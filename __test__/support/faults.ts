// An HTTP proxy in front of an object store that injects the faults a real
// one has: requests held or slowed, 500s, response bodies cut midway, and
// the server gone. It forwards requests as they are (signatures included:
// the Host header is kept), so the cache cannot tell it from the store.
import http from 'node:http'
import type net from 'node:net'

export interface FaultProxy {
  /** http://127.0.0.1:<port> */
  endpoint: string
  /** Requests forwarded or answered so far. */
  readonly requests: number
  /** The requests forwarded, each once answered: method, path, status and response body bytes. */
  readonly log: readonly Forwarded[]
  /** Each request waits this long before it is forwarded. */
  delay(ms: number): void
  /** The next `n` requests are answered 500 (Infinity: all of them). */
  fail(n: number): void
  /** Response bodies longer than `bytes` are cut after that many: the connection drops. */
  cutBodiesAfter(bytes: number): void
  /** Requests wait until `release()`; `held` resolves once `n` wait. */
  hold(n: number): { held: Promise<void>; release(): void }
  /** Back to forwarding everything as it is. */
  heal(): void
  close(): Promise<void>
}

export interface Forwarded {
  method: string
  path: string
  status: number
  bytes: number
}

const INTERNAL = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>'

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target)
  let delayMs = 0
  let failures = 0
  let cutAfter = Infinity
  let holding: { n: number; waiting: (() => void)[]; reached: () => void } | undefined
  let requests = 0
  const log: Forwarded[] = []
  const sockets = new Set<net.Socket>()

  const forward = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        let sent = 0
        answer.on('data', (chunk: Buffer) => {
          if (sent + chunk.length > cutAfter) {
            res.write(chunk.subarray(0, Math.max(0, cutAfter - sent)))
            res.socket?.destroy()
            answer.destroy()
            return
          }
          sent += chunk.length
          res.write(chunk)
        })
        answer.on('end', () => {
          log.push({ method: req.method ?? '', path: req.url ?? '', status: answer.statusCode ?? 0, bytes: sent })
          res.end()
        })
        answer.on('error', () => res.socket?.destroy())
      },
    )
    out.on('error', () => res.socket?.destroy())
    req.pipe(out)
  }

  const server = http.createServer((req, res) => {
    requests++
    const go = () => {
      if (failures > 0) {
        failures--
        req.resume()
        res.writeHead(500, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(INTERNAL) })
        res.end(INTERNAL)
        return
      }
      forward(req, res)
    }
    const later = () => (delayMs > 0 ? setTimeout(go, delayMs) : go())
    if (holding) {
      holding.waiting.push(later)
      if (holding.waiting.length >= holding.n) holding.reached()
      return
    }
    later()
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as net.AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get requests() {
      return requests
    },
    log,
    delay: (ms) => (delayMs = ms),
    fail: (n) => (failures = n),
    cutBodiesAfter: (bytes) => (cutAfter = bytes),
    hold(n) {
      let reached!: () => void
      const held = new Promise<void>((r) => (reached = r))
      const h = { n, waiting: [] as (() => void)[], reached }
      holding = h
      return {
        held,
        release() {
          holding = undefined
          for (const go of h.waiting) go()
        },
      }
    },
    heal() {
      delayMs = 0
      failures = 0
      cutAfter = Infinity
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}
