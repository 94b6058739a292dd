// The page the gateway serves at GET /: plays a playlist through the local
// gateway with hls.js and shows what the swarm is doing, live from SSE.
// Plain DOM, no framework; every value is written with textContent.

import Hls, { type ErrorData } from "hls.js";

/** `GET /api/v1/stats` and the `stats-update` event. */
interface Stats {
  peers_connected: number;
  bytes_from_p2p: number;
  bytes_from_cdn: number;
  bytes_from_store: number;
  bytes_uploaded: number;
  p2p_ratio: number;
  segments_stored: number;
  store_bytes: number;
  receipts_accepted: number;
}

/** One entry of `GET /api/v1/videos`. */
interface Video {
  id: string;
  url: string;
  segments_total: number;
  segments_stored: number;
  state: string;
  reason?: string;
}

/** What a headless browser test reads. */
interface PageState {
  stats: Stats | null;
  /** stats-update events received. */
  updates: number;
  playing: boolean;
  /** Bytes per second, from the counters' deltas between updates. */
  down: number;
  up: number;
  /** The last error shown, or "". */
  error: string;
  /** peer-connected, peer-disconnected and fallback-cdn events received. */
  events: number;
  hlsVersion: string;
}

declare global {
  interface Window {
    swarmseedPage: PageState;
  }
}

const LOG_MAX = 20;
const VIDEOS_EVERY_MS = 5000;

const page: PageState = {
  stats: null,
  updates: 0,
  playing: false,
  down: 0,
  up: 0,
  error: "",
  events: 0,
  hlsVersion: Hls.version,
};
window.swarmseedPage = page;

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing from the page`);
  return e as T;
}

const video = el<HTMLVideoElement>("video");
const urlBox = el<HTMLInputElement>("url");
const errorBox = el("error");
const statusLine = el("status");

// ---- formatting -------------------------------------------------------------

function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Bytes per second as Mbit/s, or KB/s below one megabit. */
function speed(bytesPerSecond: number): string {
  const mbit = (bytesPerSecond * 8) / 1e6;
  if (mbit >= 1) return `${mbit.toFixed(2)} Mbit/s`;
  return `${(bytesPerSecond / 1000).toFixed(1)} KB/s`;
}

function set(id: string, text: string): void {
  const e = el(id);
  if (e.textContent !== text) e.textContent = text;
}

// ---- errors -----------------------------------------------------------------

function showError(message: string): void {
  page.error = message;
  errorBox.textContent = message;
  errorBox.hidden = message === "";
}

/** The gateway answers errors as `{"error": …}`; show its words when it did. */
function gatewayError(status: number, body: string): string {
  try {
    const json = JSON.parse(body) as { error?: string; upstream_status?: number };
    if (json.error) {
      const upstream = json.upstream_status ? ` (the CDN answered ${json.upstream_status})` : "";
      return `Gateway answered ${status}: ${json.error}${upstream}`;
    }
  } catch {
    // Not JSON: fall through.
  }
  return `Gateway answered ${status}`;
}

function hlsError(data: ErrorData): string {
  const code = data.response?.code;
  const xhr = data.networkDetails;
  if (code && code >= 400) {
    const body =
      xhr instanceof XMLHttpRequest && (xhr.responseType === "" || xhr.responseType === "text")
        ? xhr.responseText
        : "";
    return `${data.details}: ${gatewayError(code, body)}`;
  }
  return `Playback failed (${data.type}: ${data.details})${data.error ? `: ${data.error.message}` : ""}`;
}

// ---- playback ---------------------------------------------------------------

let hls: Hls | null = null;

function gatewayUrl(url: string): string {
  return `/hls?url=${encodeURIComponent(url)}`;
}

async function play(url: string): Promise<void> {
  showError("");
  hls?.destroy();
  hls = null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    showError(`Not a URL: ${url}`);
    return;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    showError("Only http and https playlist URLs can be played.");
    return;
  }
  const link = new URL(location.href);
  link.searchParams.set("url", url);
  history.replaceState(null, "", link);
  const src = gatewayUrl(url);
  statusLine.textContent = `Playing ${url} through ${src}`;

  if (Hls.isSupported()) {
    hls = new Hls({ workerPath: "/web/hls.worker.js" });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      showError(hlsError(data));
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls?.recoverMediaError();
      } else {
        hls?.destroy();
        hls = null;
        page.playing = false;
      }
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    // Safari on iOS: no MSE, but HLS natively. Ask first so an error reads plainly.
    const res = await fetch(src).catch(() => null);
    if (!res) {
      showError("The gateway did not answer.");
      return;
    }
    if (!res.ok) {
      showError(gatewayError(res.status, await res.text()));
      return;
    }
    video.src = src;
  } else {
    showError("This browser can play neither MSE nor HLS natively.");
    return;
  }
  video.play().catch(() => {
    // Autoplay refused: the controls are there.
  });
}

video.addEventListener("playing", () => {
  page.playing = true;
});
for (const e of ["pause", "ended", "emptied", "waiting"]) {
  video.addEventListener(e, () => {
    page.playing = false;
  });
}
video.addEventListener("error", () => {
  if (hls) return; // hls.js reports its own.
  const err = video.error;
  if (err) showError(`Playback failed: ${err.message || `media error ${err.code}`}`);
});

el<HTMLFormElement>("open").addEventListener("submit", (e) => {
  e.preventDefault();
  void play(urlBox.value.trim());
});

// ---- live stats -------------------------------------------------------------

let last: { at: number; down: number; up: number } | null = null;

function onStats(s: Stats): void {
  const now = performance.now();
  const down = s.bytes_from_p2p + s.bytes_from_cdn;
  if (last && now > last.at) {
    const secs = (now - last.at) / 1000;
    page.down = Math.max(0, down - last.down) / secs;
    page.up = Math.max(0, s.bytes_uploaded - last.up) / secs;
  }
  last = { at: now, down, up: s.bytes_uploaded };
  page.stats = s;
  page.updates++;

  set("peers", String(s.peers_connected));
  set("ratio", `${(s.p2p_ratio * 100).toFixed(1)} %`);
  set("down", speed(page.down));
  set("up", speed(page.up));
  set("p2p-bytes", bytes(s.bytes_from_p2p));
  set("cdn-bytes", bytes(s.bytes_from_cdn));
  set("store-bytes", bytes(s.bytes_from_store));
  set("uploaded", bytes(s.bytes_uploaded));
  set("receipts", String(s.receipts_accepted));
  set("segments", `${s.segments_stored} (${bytes(s.store_bytes)})`);
}

const log = el("log");

function logEvent(text: string): void {
  page.events++;
  const li = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString();
  li.append(time, text);
  log.prepend(li);
  while (log.childElementCount > LOG_MAX) log.lastElementChild?.remove();
}

function shortPeer(peer: string): string {
  return peer.length > 16 ? `…${peer.slice(-12)}` : peer;
}

function listen(): void {
  const conn = el("conn");
  const events = new EventSource("/api/v1/events");
  events.onopen = () => {
    conn.textContent = "live";
    conn.classList.add("live");
  };
  events.onerror = () => {
    conn.textContent = "reconnecting…";
    conn.classList.remove("live");
  };
  const json = (e: Event): Record<string, unknown> | null => {
    try {
      return JSON.parse((e as MessageEvent<string>).data) as Record<string, unknown>;
    } catch {
      return null;
    }
  };
  events.addEventListener("stats-update", (e) => {
    const s = json(e);
    if (s) onStats(s as unknown as Stats);
  });
  events.addEventListener("peer-connected", (e) => {
    logEvent(`peer connected ${shortPeer(String(json(e)?.peer ?? "?"))}`);
  });
  events.addEventListener("peer-disconnected", (e) => {
    logEvent(`peer disconnected ${shortPeer(String(json(e)?.peer ?? "?"))}`);
  });
  events.addEventListener("fallback-cdn", (e) => {
    const d = json(e);
    const name = String(d?.url ?? "").split("?")[0].split("/").pop() || "segment";
    logEvent(`from CDN: ${name}, ${bytes(Number(d?.bytes ?? 0))} (${String(d?.reason ?? "")})`);
  });
  events.addEventListener("lagged", (e) => {
    logEvent(`missed ${(e as MessageEvent<string>).data} events`);
  });
}

// ---- seeded videos ----------------------------------------------------------

const videosList = el("videos");

function renderVideos(videos: Video[]): void {
  const items = videos.map((v) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    const link = new URL(location.href);
    link.searchParams.set("url", v.url);
    a.href = link.search;
    a.textContent = v.id;
    a.title = v.url;
    a.addEventListener("click", (e) => {
      e.preventDefault();
      urlBox.value = v.url;
      urlBox.focus();
    });
    const state = document.createElement("span");
    state.className = v.state === "failed" ? "state failed" : "state";
    state.textContent = ` ${v.state} ${v.segments_stored}/${v.segments_total}${v.reason ? `: ${v.reason}` : ""}`;
    li.append(a, state);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = "none";
    items.push(li);
  }
  videosList.replaceChildren(...items);
}

async function refreshVideos(): Promise<void> {
  try {
    const res = await fetch("/api/v1/videos");
    if (res.ok) renderVideos((await res.json()) as Video[]);
  } catch {
    // The gateway is away; SSE shows it as reconnecting.
  }
}

// ---- start ------------------------------------------------------------------

listen();
void refreshVideos();
setInterval(() => void refreshVideos(), VIDEOS_EVERY_MS);

const initial = new URLSearchParams(location.search).get("url");
if (initial) {
  urlBox.value = initial;
  void play(initial);
}
