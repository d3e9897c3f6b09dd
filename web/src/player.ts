import { type RecordingMeta, json, qs, session } from './api.js';
import { field, h, notice, option, replace } from './dom.js';
import { errorNotice } from './pages/common.js';

interface Ticket {
  ticket_id: string;
  media_url: string;
  expires_at: string;
}

interface Peaks {
  codec: string;
  sample_rate: number;
  channels: number;
  duration_s: number;
  points: number;
  min: number[][];
  max: number[][];
}

const fmtClock = (s: number) => {
  if (!Number.isFinite(s)) return '0:00';
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return `${m}:${String(sec).padStart(2, '0')}`;
};

function channelName(c: number, n: number): string {
  if (n === 1) return 'Mono';
  if (n === 2) return c === 0 ? 'Left channel (side 1)' : 'Right channel (side 2)';
  return `Channel ${c + 1}`;
}

/**
 * The player: an <audio> element fed by a media ticket (the browser then sends its own Range
 * requests to the gateway, so seeking works on long recordings; the API key never enters a URL),
 * the waveform of every channel (stereo recordings: both sides), and — for stereo — listening to
 * one side. Played through the gateway's media path, so G.729/GSM arrive as PCM WAV.
 */
export function createPlayer(rec: RecordingMeta): { el: HTMLElement; destroy(): Promise<void> } {
  const audio = h('audio', { controls: true, preload: 'none', class: 'audio', 'aria-label': 'Recording audio' });
  const status = h('div', { class: 'status-slot', 'aria-live': 'polite' });
  const info = h('p', { class: 'muted player-info' });
  const lanes = h('div', { class: 'lanes' });
  const wave = h('div', { class: 'wave', role: 'slider', tabindex: 0, 'aria-label': 'Position in the recording (waveform)', 'aria-valuemin': 0, 'aria-valuemax': 0, 'aria-valuenow': 0, 'aria-valuetext': '0:00' }, lanes);
  const listen = h('select', { id: 'listen-side' }, option('both', 'Both sides'), option('left', 'Left side only'), option('right', 'Right side only'));
  const listenField = field('Listen to', listen);
  listenField.hidden = true;
  const play = h('button', { type: 'button', class: 'primary', id: 'play' }, 'Play');
  const expired = rec.retention_status === 'EXPIRED';
  if (expired) play.disabled = true;

  let ticket: Ticket | null = null;
  /** The credential the ticket was issued to: only its owner (or an admin) can revoke it, and the session may be clearing. */
  let ticketKey: string | null = null;
  let peaks: Peaks | null = null;
  let canvases: HTMLCanvasElement[] = [];
  let raf = 0;
  let renewing = false;
  let destroyed = false;
  let graph: { ctx: AudioContext; set(side: string): void } | null = null;

  const duration = () => (Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : (peaks?.duration_s ?? 0));

  const draw = () => {
    if (!peaks) return;
    const pos = duration() ? audio.currentTime / duration() : 0;
    canvases.forEach((cv, c) => {
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(200, cv.clientWidth);
      const hgt = cv.clientHeight || 72;
      if (cv.width !== Math.round(w * dpr)) cv.width = Math.round(w * dpr);
      if (cv.height !== Math.round(hgt * dpr)) cv.height = Math.round(hgt * dpr);
      const g = cv.getContext('2d');
      if (!g) return;
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, hgt);
      g.fillStyle = '#f1f4f8';
      g.fillRect(0, 0, w, hgt);
      g.strokeStyle = '#d5dbe3';
      g.beginPath();
      g.moveTo(0, hgt / 2);
      g.lineTo(w, hgt / 2);
      g.stroke();
      const mins = peaks!.min[c] ?? [];
      const maxs = peaks!.max[c] ?? [];
      const n = mins.length;
      const barW = w / Math.max(1, n);
      for (let i = 0; i < n; i++) {
        const x = i * barW;
        const top = hgt / 2 - (maxs[i]! * hgt) / 2;
        const bottom = hgt / 2 - (mins[i]! * hgt) / 2;
        g.fillStyle = i / n < pos ? '#1e3a5f' : '#7f9bbd';
        g.fillRect(x, top, Math.max(1, barW - 0.5), Math.max(1, bottom - top));
      }
      g.fillStyle = '#c2410c';
      g.fillRect(pos * w - 1, 0, 2, hgt);
    });
    const d = duration();
    wave.setAttribute('aria-valuemax', String(Math.round(d)));
    wave.setAttribute('aria-valuenow', String(Math.round(audio.currentTime)));
    wave.setAttribute('aria-valuetext', `${fmtClock(audio.currentTime)} of ${fmtClock(d)}`);
  };
  const loop = () => {
    draw();
    if (!audio.paused) raf = requestAnimationFrame(loop);
  };

  const seek = (t: number) => {
    const d = duration();
    if (!d || !ticket) return;
    audio.currentTime = Math.min(Math.max(0, t), d - 0.01);
    draw();
  };
  wave.addEventListener('click', (ev) => {
    const r = wave.getBoundingClientRect();
    seek(((ev.clientX - r.left) / r.width) * duration());
  });
  wave.addEventListener('keydown', (ev) => {
    const step = { ArrowLeft: -5, ArrowRight: 5, PageDown: -30, PageUp: 30 }[ev.key];
    if (step !== undefined) seek(audio.currentTime + step);
    else if (ev.key === 'Home') seek(0);
    else if (ev.key === 'End') seek(duration());
    else if (ev.key === ' ' || ev.key === 'Enter') void (audio.paused ? audio.play() : audio.pause());
    else return;
    ev.preventDefault();
  });

  const issue = async () => {
    const key = session.key;
    const issued = await json<Ticket>('POST', '/api/v1/media-tickets', { ref: rec.id, format: 'wav', purpose: session.purpose });
    // Closed (navigation, sign-out) while the ticket was being issued: it is not needed, revoke it at once.
    if (destroyed) {
      if (key) void revokeTicket(issued, key);
      throw new Error('The player was closed.');
    }
    ticket = issued;
    ticketKey = key;
    audio.src = ticket.media_url;
  };

  const loadWaveform = async () => {
    const points = Math.min(2000, Math.max(200, Math.round(wave.clientWidth || 800)));
    peaks = await json<Peaks>('GET', `/api/v1/recordings/${encodeURIComponent(rec.id)}/waveform${qs({ points, purpose: session.purpose })}`);
    canvases = Array.from({ length: peaks.channels }, (_, c) => h('canvas', { class: 'lane', role: 'img', 'aria-label': `Waveform, ${channelName(c, peaks!.channels)}` }));
    replace(
      lanes,
      canvases.map((cv, c) => h('div', { class: 'lane-wrap' }, h('div', { class: 'lane-label', 'aria-hidden': 'true' }, channelName(c, peaks!.channels)), cv)),
    );
    listenField.hidden = peaks.channels !== 2;
    replace(
      info,
      `Stored as ${peaks.codec} · ${peaks.channels === 2 ? 'stereo (both sides shown)' : peaks.channels === 1 ? 'mono' : `${peaks.channels} channels`} · ${peaks.sample_rate} Hz · ${fmtClock(peaks.duration_s)}`,
      peaks.codec.startsWith('pcm') ? '' : ' · played as PCM WAV through the gateway’s transcoder',
    );
    draw();
  };

  play.addEventListener('click', async () => {
    if (ticket) {
      void audio.play().catch(() => {});
      return;
    }
    if (!session.purpose) {
      replace(status, notice('error', 'Give a purpose of access (top of the page) first.'));
      return;
    }
    play.disabled = true;
    replace(status, notice('info', 'Asking the gateway for a media ticket…'));
    try {
      await issue();
      replace(status, notice('info', 'Loading audio…'));
      const wf = loadWaveform().catch((e: unknown) => replace(status, errorNotice(e, 'Waveform unavailable')));
      await audio.play().catch((e: unknown) => {
        if ((e as Error).name !== 'NotAllowedError') throw e;
      });
      await wf;
      if (!status.querySelector('.notice-error')) replace(status);
      play.textContent = 'Play';
    } catch (e) {
      replace(status, errorNotice(e, 'Cannot play'));
      ticket = null;
    } finally {
      play.disabled = false;
    }
  });

  audio.addEventListener('play', () => {
    cancelAnimationFrame(raf);
    raf = requestAnimationFrame(loop);
  });
  audio.addEventListener('timeupdate', draw);
  audio.addEventListener('loadedmetadata', draw);
  // A ticket lives minutes, not hours: when the gateway stops honouring it, get a new one and go on where we were.
  audio.addEventListener('error', async () => {
    if (destroyed || !ticket || renewing) return;
    renewing = true;
    const at = audio.currentTime;
    try {
      await issue();
      audio.currentTime = at;
      replace(status, notice('info', 'The media ticket was renewed.'));
    } catch (e) {
      replace(status, errorNotice(e, 'Playback stopped'));
    } finally {
      setTimeout(() => (renewing = false), 5000);
    }
  });

  listen.addEventListener('change', () => {
    if (!graph) {
      const ctx = new AudioContext();
      const src = ctx.createMediaElementSource(audio);
      const split = ctx.createChannelSplitter(2);
      const merge = ctx.createChannelMerger(2);
      const left = ctx.createGain();
      const right = ctx.createGain();
      src.connect(split);
      split.connect(left, 0);
      split.connect(right, 1);
      merge.connect(ctx.destination);
      graph = {
        ctx,
        set(side: string) {
          left.disconnect();
          right.disconnect();
          if (side !== 'right') left.connect(merge, 0, 0);
          if (side !== 'left') right.connect(merge, 0, 1);
          if (side === 'left') left.connect(merge, 0, 1);
          if (side === 'right') right.connect(merge, 0, 0);
        },
      };
    }
    graph.set(listen.value);
    void graph.ctx.resume();
  });

  const onResize = () => draw();
  window.addEventListener('resize', onResize);

  const el = h(
    'section',
    { class: 'card player', 'aria-labelledby': 'listen-title' },
    h('h2', { id: 'listen-title' }, 'Listen'),
    h('p', { class: 'muted' }, 'Playing is audited as ', h('code', {}, 'recording.media'), ' with your purpose of access. Seek with the player, or click the waveform (arrow keys step 5 s).'),
    expired ? notice('warn', 'This recording is past its retention: the gateway refuses to play it.') : null,
    h('div', { class: 'player-row' }, play, audio),
    wave,
    h('div', { class: 'player-row' }, listenField),
    info,
    status,
  );

  return {
    el,
    destroy() {
      destroyed = true;
      cancelAnimationFrame(raf);
      window.removeEventListener('resize', onResize);
      audio.pause();
      audio.removeAttribute('src');
      audio.load();
      void graph?.ctx.close();
      const [t, key] = [ticket, ticketKey];
      ticket = null;
      ticketKey = null;
      // With the key the ticket was issued to (sign-out calls this before it clears the session).
      return t && key ? revokeTicket(t, key) : Promise.resolve();
    },
  };
}

/**
 * DELETE /api/v1/media-tickets/{id}, resolved when the gateway answered (or could not be reached:
 * never rejects). keepalive: the revocation still goes out when the tab is closing.
 */
function revokeTicket(t: Ticket, key: string): Promise<void> {
  return fetch(`/api/v1/media-tickets/${encodeURIComponent(t.ticket_id)}`, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${key}` },
    keepalive: true,
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  }).then(
    () => undefined,
    () => undefined,
  );
}

