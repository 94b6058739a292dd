// A WebTorrent (WebSocket) tracker for the tests: the real
// bittorrent-tracker server, as p2p-media-loader deployments run it.
//
//   node tracker.mjs [--port N] [--host H] [--interval MS] [--log]
//
// Prints `listening <port>` once it accepts connections, then runs until
// stdin closes (the test that started it is gone) or SIGTERM/SIGINT.
// `--log` also prints every message peers send, one JSON line each
// (`{"conn":N,"event":"open"|"close"|"message","msg":…}`), so a test can see
// the announces, the SDP offers and answers and the peer ids.
//
// Only the `/server` subpath is imported: the package root loads the client,
// which needs node-datachannel, a native module not installed here.
import Server from 'bittorrent-tracker/server'

function option (name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]
  const env = process.env[`TRACKER_${name.toUpperCase()}`]
  return env ?? fallback
}

const port = Number(option('port', '0'))
const host = option('host', '127.0.0.1')
// Milliseconds; WebSocket peers are told to re-announce every interval/5
// (bittorrent-tracker's rule), so 10000 makes browsers announce every 2 s.
const interval = Number(option('interval', '10000'))
const log = process.argv.includes('--log') || process.env.TRACKER_LOG === '1'

const server = new Server({ http: false, udp: false, ws: true, stats: false, interval })

function out (line) {
  process.stdout.write(line + '\n')
}
// The test that reads stdout is gone: so is the reason to run.
process.stdout.on('error', () => process.exit(0))

// The server reports bad requests as warnings and keeps serving; a test may
// want to see them, so they go to stderr rather than ending the process.
server.on('warning', (err) => process.stderr.write(`tracker warning: ${err?.message ?? err}\n`))
server.on('error', (err) => {
  process.stderr.write(`tracker error: ${err?.message ?? err}\n`)
  process.exit(1)
})

if (log) {
  let next = 0
  // Added after the server's own handler, so each message is logged after
  // the tracker has processed it.
  server.ws.on('connection', (socket) => {
    const conn = ++next
    out(JSON.stringify({ conn, event: 'open' }))
    socket.on('message', (data) => {
      let msg
      try {
        msg = JSON.parse(data.toString())
      } catch {
        msg = { unparsable: data.toString() }
      }
      out(JSON.stringify({ conn, event: 'message', msg }))
    })
    socket.on('close', () => out(JSON.stringify({ conn, event: 'close' })))
  })
}

server.listen(port, host, () => {
  out(`listening ${server.ws.address().port}`)
})

function stop () {
  server.close(() => process.exit(0))
  // close() waits for open sockets; don't let a browser keep us up.
  setTimeout(() => process.exit(0), 1000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
