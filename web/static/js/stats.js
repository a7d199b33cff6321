// Per-tile statistics from RTCPeerConnection.getStats(): what a tile
// receives (resolution, frame rate, bitrate, loss, the simulcast layer the
// server forwards) and, on the self tile, what each published layer sends.

// Sent layers are listed lowest first, in this client's rids.
const RID_ORDER = { l: 0, m: 1, h: 2 };

// Byte counters of the previous sample, by stats id, to turn totals into
// rates.
const previous = new Map();

function rate(id, bytes, now) {
  const prev = previous.get(id);
  previous.set(id, { bytes, at: now });
  if (!prev || now <= prev.at || bytes < prev.bytes) return 0;
  return Math.round(((bytes - prev.bytes) * 8) / (now - prev.at)); // bit/ms = kbit/s
}

// collect reads one report and returns the text of each tile's panel, by
// tile key. where.inbound(mid) names the tile key and server track id of a
// received media section, where.outbound(mid) the tile key of a sent one;
// where.layer(trackId) is the server's latest layer decision.
export async function collect(pc, where) {
  const report = await pc.getStats();
  const now = performance.now();
  const lines = new Map(); // tile key -> [{order, text}]
  const add = (key, text, order = 0) => lines.set(key, [...(lines.get(key) || []), { order, text }]);
  for (const id of previous.keys()) if (!report.has(id)) previous.delete(id);
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      const info = where.inbound(s.mid);
      if (!info) return;
      const kbps = rate(s.id, s.bytesReceived || 0, now);
      const lost = Math.max(s.packetsLost || 0, 0);
      const got = s.packetsReceived || 0;
      const loss = got + lost ? ((100 * lost) / (got + lost)).toFixed(1) : '0.0';
      const d = where.layer(info.id);
      let layer = '-';
      if (d) layer = d.paused || !d.current ? 'paused' : d.current;
      if (d && d.target && d.target !== d.current && !d.paused) layer += ` → ${d.target}`;
      if (d && d.reason && d.reason !== 'requested' && d.reason !== 'paused') layer += ` (${d.reason})`;
      add(info.key,
        `${s.frameWidth || 0}×${s.frameHeight || 0} ${Math.round(s.framesPerSecond || 0)} fps\n` +
        `${kbps} kbit/s, loss ${loss}%\n` +
        `layer ${layer}`);
    } else if (s.type === 'outbound-rtp' && s.kind === 'video') {
      const kbps = rate(s.id, s.bytesSent || 0, now);
      const limit = s.qualityLimitationReason && s.qualityLimitationReason !== 'none' ? ` (${s.qualityLimitationReason})` : '';
      const rid = s.rid ? `${s.rid}: ` : '';
      const key = where.outbound(s.mid);
      if (!key) return;
      add(key, `${rid}${s.frameWidth || 0}×${s.frameHeight || 0} ${Math.round(s.framesPerSecond || 0)} fps ${kbps} kbit/s${limit}`, RID_ORDER[s.rid] ?? 0);
    }
  });
  const text = new Map();
  for (const [key, l] of lines) text.set(key, l.sort((a, b) => a.order - b.order).map((x) => x.text).join('\n'));
  return text;
}
