// Generates p2pml-streams.json and p2pml-commands.json: test vectors for
// bridge/src/p2pml/{stream,command}.rs produced by the real code of
// p2p-media-loader 2.2.2 / 2.3.1 and hls.js 1.6.16 (see README.md).
//
// Usage (Node 20+, network access to the npm registry):
//   node tests/vectors/make-p2pml-vectors.mjs [workdir]
//
// Everything it downloads goes into `workdir` (default: a fresh temp dir),
// never into this repository.

import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGES = [
  "p2p-media-loader-core@2.2.2",
  "p2p-media-loader-core@2.3.1",
  "p2p-media-loader-hlsjs@2.2.2",
  "p2p-media-loader-hlsjs@2.3.1",
  "hls.js@1.6.16",
];
const TOOLS = ["esbuild@0.28.2", "nano-md5@1.0.5"]; // nano-md5: core 2.2.2's only hash dependency

const work = process.argv[2] ?? mkdtempSync(join(tmpdir(), "p2pml-vectors-"));
mkdirSync(work, { recursive: true });
const run = (cmd, args) => execFileSync(cmd, args, { cwd: work, stdio: ["ignore", "pipe", "inherit"] });

// ---------------------------------------------------------------- setup
if (!existsSync(join(work, "package.json"))) {
  writeFileSync(join(work, "package.json"), '{"name":"p2pml-vectors","private":true}\n');
}
if (!existsSync(join(work, "node_modules", "esbuild"))) {
  run("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", ...TOOLS]);
}
const pkgDir = (spec) => join(work, "pkg", spec.replace("@", "-").replace("/", "_"));
for (const spec of PACKAGES) {
  const dir = pkgDir(spec);
  if (existsSync(join(dir, "package"))) continue;
  mkdirSync(dir, { recursive: true });
  const name = run("npm", ["pack", "--silent", "--pack-destination", dir, spec]).toString().trim().split("\n").pop();
  execFileSync("tar", ["xzf", join(dir, name), "-C", dir]);
}
const core = (v) => join(pkgDir(`p2p-media-loader-core@${v}`), "package");
const hlsjsIntegration = (v) => join(pkgDir(`p2p-media-loader-hlsjs@${v}`), "package");
const hlsDir = join(pkgDir("hls.js@1.6.16"), "package");

// Browser globals the bundles touch at load time (nothing else is used).
globalThis.self = globalThis;
globalThis.window = globalThis;
globalThis.location = { href: "http://page.invalid/" };
globalThis.WebSocket = class {};

// Bundle, per p2pml version, the shipped TypeScript that computes swarm ids
// and (de)serialises commands, plus the hls.js integration's SegmentManager
// (its `p2p-media-loader-core` import resolves to that version's dist bundle,
// which also gives us the real Core to collect streams and strip the URL).
const { build } = await import(pathToFileURL(join(work, "node_modules", "esbuild", "lib", "main.js")).href);
async function bundle(v) {
  const segmentManager = v === "2.2.2" ? "segment-mananger.ts" : "segment-manager.ts"; // sic in 2.2.2
  const entry = join(work, `entry-${v}.ts`);
  writeFileSync(
    entry,
    [
      `export { SegmentManager } from ${JSON.stringify(join(hlsjsIntegration(v), "src", segmentManager))};`,
      `export { getStreamSwarmId } from ${JSON.stringify(join(core(v), "src/utils/stream.ts"))};`,
      `export { getStreamHash, TRACKER_CLIENT_VERSION_PREFIX } from ${JSON.stringify(join(core(v), "src/utils/peer.ts"))};`,
      `export { serializePeerCommand, deserializeCommand, isCommandChunk, BinaryCommandChunksJoiner } from ${JSON.stringify(join(core(v), "src/p2p/commands/index.ts"))};`,
      `export * as Core from "p2p-media-loader-core";`,
    ].join("\n"),
  );
  const outfile = join(work, `bundle-${v}.mjs`);
  await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    outfile,
    logLevel: "error",
    alias: { "p2p-media-loader-core": join(core(v), "dist", "p2p-media-loader-core.es.js") },
    nodePaths: [join(work, "node_modules")],
    mainFields: ["module", "main"],
  });
  return import(pathToFileURL(outfile).href);
}
const lib = { "2.2.2": await bundle("2.2.2"), "2.3.1": await bundle("2.3.1") };
const { default: Hls } = await import(pathToFileURL(join(hlsDir, "dist", "hls.mjs")).href);

// ---------------------------------------------------------------- streams
// Each case: the URL the player asked for, the URL the response came from
// (what p2pml strips into the swarm base), the body, optionally config.swarmId.
const cases = [];
const add = (name, url, body, extra = {}) => cases.push({ name, url, finalUrl: extra.finalUrl ?? url, body, swarmId: extra.swarmId });
const CRLF = (s) => s.replace(/\n/g, "\r\n");

add("p2pml-md-row1", "http://127.0.0.1:8080/hls/master.m3u8?token=abc", `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="en",NAME="English",CHANNELS="2",URI="audio/en.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2",FRAME-RATE=30.000,AUDIO="aud"
360p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aud"
720p.m3u8
`);
add("ffmpeg-master", "http://127.0.0.1:8080/hls/master.m3u8", `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=950400,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"
stream_0.m3u8

`);
add("no-average-bandwidth-and-average-only", "https://cdn.example.com/v/master.m3u8", `#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=480x270,CODECS="avc1.42c015,mp4a.40.5"
low/index.m3u8
#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=1500000,RESOLUTION=960x540,CODECS="avc1.4d401f,mp4a.40.2"
mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=abc,RESOLUTION=1920x1080,CODECS="avc1.640028"
nan/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=99999999999999999999,RESOLUTION=1920x1080
inf/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=-0,AVERAGE-BANDWIDTH=+700,RESOLUTION=00640x0360
signs/index.m3u8
`);
add("decimal-avc1-profiles", "https://cdn.example.com/legacy/master.m3u8", `#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=320x180,CODECS="avc1.66.30,mp4a.40.2"
a.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=600000,RESOLUTION=640x360,CODECS="avc1.77.30, mp4a.40.2"
b.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.100.40,avc1.8.9,mp4a.40.2"
c.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=950000,CODECS="avc1.x.y,avc1.0x1f.070000.5"
d.m3u8
`);
add("multiple-codecs-and-unknown-codec-stripping", "https://cdn.example.com/multi/master.m3u8?session=1&x=2", `#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS="hvc1.2.4.L123.B0,ec-3",FRAME-RATE=23.976,VIDEO-RANGE=PQ
hevc/1080.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=4000000,RESOLUTION=1920x1080,CODECS="vvc1.1.L123,mp4a.40.2"
vvc/1080.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS="dvh1.05.06 ac-3 stpp.ttml.im1t",FRAME-RATE=60,VIDEO-RANGE=hlg
dv/720.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,CODECS="av01.0.05M.08,Opus,AVC1.4D401F",FRAME-RATE=29.970,VIDEO-RANGE=SDR
av1/720.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=640x360,CODECS="vp09.00.10.08,flac/extra",FRAME-RATE=0x1E
vp9/360.m3u8
`);
add("audio-renditions", "https://media.example.org/show/master.m3u8", `#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="stereo",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/en/stereo.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="stereo",LANGUAGE="und",NAME="Commentary",CHANNELS="2",URI="audio/und/stereo.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="stereo",NAME="  No Language  ",URI="audio/none/stereo.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="stereo",LANGUAGE="pt-BR",CHANNELS="2",URI="audio/pt/stereo.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="surround",LANGUAGE="fr",NAME="Français 5.1",CHANNELS="16/JOC",URI="audio/fr/atmos.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="surround",LANGUAGE="en",NAME="English",CHANNELS="2",URI="audio/en/stereo.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="orphan",LANGUAGE="de",NAME="Deutsch",URI="audio/de.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="surround",LANGUAGE="EN",NAME="ΣΊΣΥΦΟΣ",URI="audio/el.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="surround",LANGUAGE="en",NAME="English",CHANNELS="2",URI="audio/en/surround-copy.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",URI="subs/en.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="CC",INSTREAM-ID="CC1"
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="stereo",SUBTITLES="subs",CLOSED-CAPTIONS="cc"
video/720.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=4000000,RESOLUTION=1920x1080,CODECS="avc1.640028,ec-3",AUDIO="surround",SUBTITLES="subs",CLOSED-CAPTIONS=NONE
video/1080.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,RESOLUTION=1280x720,CODECS="avc1.64001f",URI="video/720-iframes.m3u8"
`);
add("embedded-audio-rendition-first", "https://media.example.org/embedded/master.m3u8", `#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="en",NAME="Main",DEFAULT=YES
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="es",NAME="Español",URI="es.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aac"
v.m3u8
`);
add("synthetic-main-audio-track", "https://media.example.org/synthetic/master.m3u8", `#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="alt",LANGUAGE="en",NAME="English",URI="alt/en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="alt",LANGUAGE="ja",NAME="日本語",URI="alt/ja.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"
v.m3u8
`);
add("bandwidth-zero-and-duplicates", "http://example.net/live/master.m3u8?token=1?2", `#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=0,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=25
zero.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"
same-metadata-1.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"
http://backup.example.net/live/same-metadata-2.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1920x1080,CODECS="avc1.640028,mp4a.40.2"
./zero.m3u8
`, { finalUrl: "http://edge-3.example.net/live/master.m3u8?token=1?2" });
add("media-playlist", "https://vod.example.com/movie/index.m3u8?sig=abc&exp=1", `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:0
#EXTINF:6.0,
seg0.ts
#EXTINF:6.0,
seg1.ts
#EXT-X-ENDLIST
`);
add("media-playlist-config-swarm-id", "https://vod.example.com/movie/index.m3u8", `#EXTM3U
#EXT-X-TARGETDURATION:6
#EXTINF:6.0,
seg0.ts
`, { swarmId: "my-custom-swarm" });
add("master-config-swarm-id", "https://vod.example.com/show/master.m3u8?a=b", `#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"
v.m3u8
`, { swarmId: "show-42" });
add("crlf-comments-tags-between", "https://cdn.example.com/crlf/master.m3u8", CRLF(`\uFEFF#EXTM3U
# a comment
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS="avc1.42e01e,mp4a.40.2",RESOLUTION="416x234"
# comment between the tag and its URI

#EXT-X-STREAM-INF:BANDWIDTH=666,RESOLUTION=1x1
swallowed-next-tag.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=700000,CODECS=avc1.4d401e,RESOLUTION=640x360 ,FRAME-RATE= 30
  leading-space.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2",X-FOO="a=b,c",NAME="x"y,bandwidth=1
quirks.m3u8
`));
add("variable-substitution", "https://cdn.example.com/vars/master.m3u8?cdn=edge7&codec=avc1.4d401f", `#EXTM3U
#EXT-X-DEFINE:NAME="base",VALUE="https://cdn.example.com/vars"
#EXT-X-DEFINE:QUERYPARAM="cdn"
#EXT-X-DEFINE:QUERYPARAM="codec"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS="{$codec},mp4a.40.2",RESOLUTION=960x540
{$base}/{$cdn}/540.m3u8
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="{$cdn} audio",URI="{$base}/audio.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS={$codec},RESOLUTION=1280x720,AUDIO="a"
720.m3u8
`);
add("uri-less-trailing-stream-inf", "https://cdn.example.com/odd/master.m3u8", `#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=100000,CODECS="avc1.42e00a"
first.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS="avc1.42e00a"
#EXT-X-ENDLIST-LIKE-TAG`);
add("audio-only-master", "https://radio.example.com/master.m3u8", `#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.5"
aac-64.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS="mp4a.40.2"
aac-128.m3u8
`);

async function parseWithHls(c) {
  class FakeLoader {
    constructor() {
      this.stats = {
        aborted: false, loaded: 0, retry: 0, total: 0, chunkCount: 0, bwEstimate: 0,
        loading: { start: 0, first: 0, end: 0 }, parsing: { start: 0, end: 0 }, buffering: { start: 0, first: 0, end: 0 },
      };
    }
    load(context, _config, callbacks) {
      this.context = context;
      // What XMLHttpRequest.responseText gives for a UTF-8 body: decoded, BOM dropped.
      const data = new TextDecoder().decode(Buffer.from(c.body, "utf8"));
      queueMicrotask(() => callbacks.onSuccess({ url: c.finalUrl, data }, this.stats, context, null));
    }
    abort() {}
    destroy() {}
  }
  const hls = new Hls({ loader: FakeLoader, autoStartLoad: false });
  const result = await new Promise((resolve) => {
    // Registered after hls.js's own controllers, as p2pml's engine is, so it
    // sees the levels exactly as p2pml does (level-controller has run).
    hls.on(Hls.Events.MANIFEST_LOADED, (_event, data) => resolve(collect(c, data)));
    hls.on(Hls.Events.ERROR, (_event, data) => resolve({ error: `${data.details}` }));
    hls.loadSource(c.url);
  });
  hls.destroy();
  return result;
}

function collect(c, data) {
  const out = {
    hlsjs: {
      levels: data.levels.map((l) => ({
        url: l.url, bitrate: String(l.bitrate), videoCodec: l.videoCodec ?? null, audioCodec: l.audioCodec ?? null,
        width: l.width ?? null, height: l.height ?? null,
        frameRate: l.attrs["FRAME-RATE"] ?? null, videoRange: l.attrs["VIDEO-RANGE"] ?? null,
      })),
      audioTracks: data.audioTracks.map((t) => ({
        url: t.url, audioCodec: t.audioCodec ?? null, lang: t.lang ?? null, channels: t.channels ?? null, name: t.name,
      })),
    },
  };
  for (const [v, key] of [["2.2.2", "v22"], ["2.3.1", "v23"]]) {
    const { Core, SegmentManager, getStreamSwarmId, getStreamHash } = lib[v];
    const coreInstance = new Core.Core(c.swarmId === undefined ? {} : { swarmId: c.swarmId });
    coreInstance.setManifestResponseUrl(c.finalUrl);
    new SegmentManager(coreInstance).processMainManifest(data);
    // Same expression as hybrid-loader.ts / p2p/loader.ts, whose `config`
    // is the stream config of the stream's type.
    const config = coreInstance.getConfig();
    const base = (type) => (type === "main" ? config.mainStream : config.secondaryStream).swarmId ?? coreInstance.manifestResponseUrl;
    out.swarm_base = base("main");
    if (base("secondary") !== out.swarm_base) throw new Error("one swarm base per case");
    out[key] = [...coreInstance.streams.values()].map((s) => {
      const swarmId = getStreamSwarmId(base(s.type), s);
      return { type: s.type, playlist: s.runtimeId ?? "", index: String(s.index), swarm_id: swarmId, info_hash: getStreamHash(swarmId) };
    });
  }
  return out;
}

const streamVectors = [];
for (const c of cases) {
  const r = await parseWithHls(c);
  if (r.error) throw new Error(`${c.name}: hls.js error ${r.error}`);
  streamVectors.push({ name: c.name, playlist_url: c.finalUrl, config_swarm_id: c.swarmId ?? null, swarm_base: r.swarm_base, body: c.body, v22: r.v22, v23: r.v23, hlsjs: r.hlsjs });
}

// generateStreamShortId on its own (2.3.1 exports it), for the normaliser.
const shortIdProps = [
  { bitrate: 1280000, codecs: "avc1.4d401e", width: 640, height: 360, frameRate: "30.000" },
  { bitrate: 0 },
  { bitrate: 0, codecs: "mp4a.40.2", language: "en", channels: "2", name: "English" },
  { bitrate: 1, codecs: " AVC1.66.30 ,mp4a.40.2,avc.77.40,avc1.066.30,avc1.8.9,avc1.4d401e.1,ec-3" },
  { bitrate: 2, codecs: "avc1.-5.30,avc1.18014398509481984.1,avc1.9007199254740993.1,avc1.1e2.3" },
  { bitrate: 3, language: "und", name: " Mixed Case ", channels: "6/JOC", videoRange: " pq " },
  { bitrate: 4, language: "UND", frameRate: "29.970" },
  { bitrate: 5, language: "e", frameRate: "0x1E" },
  { bitrate: 6, language: "eng", frameRate: " 1e3 " },
  { bitrate: 7, frameRate: "abc" },
  { bitrate: 8, frameRate: "0.0000001" },
  { bitrate: 9, frameRate: "123456789012345678901234" },
  { bitrate: 10, frameRate: "-Infinity" },
  { bitrate: 11, frameRate: "0" },
  { bitrate: 12, frameRate: "." },
  { bitrate: 13, frameRate: "1." },
  { bitrate: 14, frameRate: ".5e-2" },
  { bitrate: 15, codecs: "z,b,a,B,é,ä", name: "ΣΊΣΥΦΟΣ", language: "Ελ" },
  { bitrate: 16, codecs: "", width: 0, height: 0, channels: "", name: "" },
];
const shortIds = shortIdProps.map((props) => ({ props, index: lib["2.3.1"].Core.generateStreamShortId(props) }));

const streamsOut = {
  generated_by: "tests/vectors/make-p2pml-vectors.mjs",
  packages: PACKAGES,
  peer_id_prefix: { v22: lib["2.2.2"].TRACKER_CLIENT_VERSION_PREFIX, v23: lib["2.3.1"].TRACKER_CLIENT_VERSION_PREFIX },
  cases: streamVectors,
  short_ids: shortIds,
};
writeFileSync(join(HERE, "p2pml-streams.json"), JSON.stringify(streamsOut, null, 1) + "\n");

// ---------------------------------------------------------------- commands
const hex = (u8) => Buffer.from(u8).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));
const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);
const { serializePeerCommand, deserializeCommand, isCommandChunk, BinaryCommandChunksJoiner } = lib["2.3.1"];

// Same bytes from 2.2.2 (its command code is identical; this proves it).
const same = (cmd, max) => {
  const a = serializePeerCommand(cmd, max).map(hex);
  const b = lib["2.2.2"].serializePeerCommand(cmd, max).map(hex);
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error("2.2.2 and 2.3.1 serialise differently");
  return a;
};
const join_ = (frames) => {
  let out;
  const joiner = new BinaryCommandChunksJoiner((buf) => (out = deserializeCommand(buf)));
  for (const f of frames) joiner.addCommandChunk(unhex(f));
  return out;
};

const encodeCommands = [
  [{ c: 0 }, 65535],
  [{ c: 0, l: [3, 4, 5, 300], p: [6] }, 65535],
  [{ c: 0, l: [0] }, 65535],
  [{ c: 0, p: [255, 256, 65535, 65536, 2 ** 40, 2 ** 40 + 255] }, 65535],
  [{ c: 0, l: range(0, 255), p: range(1000, 1010) }, 65535],
  [{ c: 0, l: range(0, 600) }, 65535],
  [{ c: 0, l: range(0, 300) }, 100],
  [{ c: 0, l: range(0, 40), p: range(512, 530) }, 24],
  [{ c: 0, l: [1, 2, 3] }, 17],
  [{ c: 0, l: [1, 2, 3] }, 16],
  [{ c: 0, l: [1, 2, 3] }, 12],
  [{ c: 0, l: range(0, 10) }, 10],
  [{ c: 1, i: 12, r: 345 }, 65535],
  [{ c: 1, i: 0, r: 0 }, 65535],
  [{ c: 1, i: 65535, r: 999, b: 1234567 }, 65535],
  [{ c: 1, i: 2 ** 40, r: 5, b: 2 ** 53 - 1 }, 65535],
  [{ c: 1, i: 127, r: 128, b: 32767 }, 65535],
  [{ c: 1, i: 12, r: 345, b: 0 }, 65535],
  [{ c: 2, i: 12, s: 1234567, r: 345 }, 65535],
  [{ c: 2, i: 255, s: 256, r: 65535 }, 15],
  [{ c: 3, i: 12, r: 345 }, 65535],
  [{ c: 4, i: 12, r: 345 }, 65535],
  [{ c: 5, i: 12, r: 345 }, 65535],
  [{ c: 5, i: 8388607, r: 8388608 }, 13],
].map(([command, max]) => {
  const frames = same(command, max);
  let decoded = null;
  let error = null;
  try {
    decoded = join_(frames);
  } catch (e) {
    error = String(e?.message ?? e);
  }
  return { command, max, frames, decoded, error };
});

// Bytes built here, decoded by the library: a full 256-id block sent as two
// groups of the same block (255 + 1), the library's own encoding of that
// block (the 256 bug), an empty group list, and non-minimal ints.
const decodeCases = [
  { why: "full 256-block as two groups 255+1", frames: ["63737472" + "00" + "6c" + "1002" + "0200ff" + hex(new Uint8Array(range(0, 255))) + "0101" + "ff" + "63656e64"] },
  { why: "block 1 (256..511) as 255+1 plus block 3 with 2 ids", frames: ["63737472" + "00" + "6c" + "1003" + "0201ff" + hex(new Uint8Array(range(0, 255))) + "020101" + "ff" + "020302" + "0001" + "63656e64"] },
  { why: "library encoding of ids 0..255 (one group, count 256 stored as 0)", frames: same({ c: 0, l: range(0, 256) }, 65535) },
  { why: "library encoding of 256 groups (G stored as 0)", frames: same({ c: 0, l: range(0, 256).map((b) => b * 256) }, 65535) },
  { why: "empty similar-int array", frames: ["63737472" + "00" + "6c" + "1000" + "63656e64"] },
  { why: "non-minimal int and zero-length int", frames: ["63737472" + "01" + "69" + "03000005" + "72" + "00" + "63656e64"] },
  { why: "negative zero", frames: ["63737472" + "03" + "69" + "0180" + "72" + "0101" + "63656e64"] },
  { why: "fields in another order", frames: ["63737472" + "02" + "72" + "020159" + "73" + "0312d687" + "69" + "010c" + "63656e64"] },
].map((d) => {
  let decoded = null;
  let error = null;
  try {
    decoded = join_(d.frames);
  } catch (e) {
    error = String(e?.message ?? e);
  }
  return { ...d, decoded, error };
});

const chunkCases = [
  "", "63737472", "6373747263656e64", "6473747264656e64", "637374726473747263656e", "6373747200", "00637374726365", "637374720063656e64",
  "6473747200ff63656e64", "637374720064656e64", "4373747263656e64", "63737472deadbeef64656e64", "647374726365", "63737472636564",
].map((h) => ({ hex: h, is_command: isCommandChunk(unhex(h)) }));

const commandsOut = {
  generated_by: "tests/vectors/make-p2pml-vectors.mjs",
  packages: PACKAGES.filter((p) => p.startsWith("p2p-media-loader-core")),
  encode: encodeCommands,
  decode: decodeCases,
  is_command_chunk: chunkCases,
};
writeFileSync(join(HERE, "p2pml-commands.json"), JSON.stringify(commandsOut, null, 1) + "\n");
process.stderr.write(`wrote ${streamVectors.length} stream cases, ${shortIds.length} short ids, ${encodeCommands.length} encodings, ${decodeCases.length} decodings (work dir ${work})\n`);
