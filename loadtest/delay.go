package loadtest

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/vp8"
	"github.com/confab-sfu/confab/signal/client"
)

// Forwarding delay: the publisher and the subscribers share this process's
// clock, so a packet's delay is its receive time minus its send time. The
// server rewrites the RTP header and the VP8 picture id, but forwards the
// rest of the payload byte for byte: at send the source hashes the media
// bytes (after the VP8 payload descriptor) into its publisher's send log,
// and at receive the subscriber hashes the same bytes and looks them up.

// matchWindow is how long a send stays in its log. The clips loop every
// 4 s, so inside it the bytes of a packet are sent once (a keyframe
// request that skips the clip ahead can repeat them sooner; the log then
// keeps the newest send, which is the one a packet in flight belongs to).
const matchWindow = 3 * time.Second

// A send log is a hash table of 8-way buckets (128 KiB): a send replaces
// the oldest entry of its bucket, so it needs no deletion and never
// allocates. 3 s of a three-layer camera and a microphone (about 300
// packets a second) fill it to an eighth: a bucket then holds 9 live sends,
// the only way to lose one, with odds under one in a million.
const (
	logBuckets = 1024 // a power of two
	logWays    = 8
)

var (
	hashSeed   = maphash.MakeSeed()
	clockEpoch = time.Now()
)

// clockAt turns t into monotonic nanoseconds since the process started, 0
// never being a valid time.
func clockAt(t time.Time) int64 { return int64(t.Sub(clockEpoch)) + 1 }

type sendEntry struct {
	hash uint64
	at   int64 // clockAt of the send; 0: empty
}

// sendLog remembers when one publisher sent each payload, for matchWindow.
type sendLog struct {
	room string
	peer *client.Peer // whose current id tells its tracks; nil for WHIP

	mu    sync.RWMutex
	slots [logBuckets][logWays]sendEntry
}

// sentVideo records a VP8 packet about to be sent (clip.VideoSource.OnSend).
func (l *sendLog) sentVideo(payload []byte) { l.sent(vp8Media(payload), time.Now()) }

// sentAudio records an Opus packet about to be sent (clip.AudioSource.OnSend).
func (l *sendLog) sentAudio(payload []byte) { l.sent(payload, time.Now()) }

func (l *sendLog) sent(media []byte, now time.Time) {
	if len(media) == 0 {
		return
	}
	h, at := maphash.Bytes(hashSeed, media), clockAt(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &l.slots[h&(logBuckets-1)]
	// Entries fill a bucket in order and are never removed, so an entry
	// of the same bytes comes before any empty one. A full bucket loses
	// its oldest send.
	victim := 0
	for i := range b {
		if b[i].hash == h || b[i].at == 0 {
			victim = i
			break
		}
		if b[i].at < b[victim].at {
			victim = i
		}
	}
	b[victim] = sendEntry{hash: h, at: at}
}

// sentAt finds when media was sent: within matchWindow before now.
func (l *sendLog) sentAt(media []byte, now int64) (int64, bool) {
	h := maphash.Bytes(hashSeed, media)
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, e := range l.slots[h&(logBuckets-1)] {
		if e.hash == h && e.at != 0 && e.at <= now && now-e.at <= int64(matchWindow) {
			return e.at, true
		}
	}
	return 0, false
}

// vp8Media is a VP8 RTP payload without its payload descriptor (the part
// the server may rewrite); nil if the descriptor does not parse.
func vp8Media(payload []byte) []byte {
	d, err := vp8.Parse(payload)
	if err != nil {
		return nil
	}
	return payload[d.HeaderLen:]
}

// delayMatcher holds the send logs of a run's publishers.
type delayMatcher struct {
	// measuring is set during the media window: joins are not measured.
	measuring atomic.Bool

	mu   sync.Mutex
	logs []*sendLog
}

// newLog starts the send log of a publisher in room; peer is nil for a
// WHIP presenter.
func (m *delayMatcher) newLog(room string, peer *client.Peer) *sendLog {
	l := &sendLog{room: room, peer: peer}
	m.mu.Lock()
	m.logs = append(m.logs, l)
	m.mu.Unlock()
	return l
}

// logFor finds the send log of a track received in room from publisher
// (its participant id, which a WHEP viewer sees as the stream id): the
// log of the publisher that has that id now, else the room's only log
// (a WHIP presenter's id is the server's secret); nil when it cannot tell.
func (m *delayMatcher) logFor(room, publisher string) *sendLog {
	m.mu.Lock()
	defer m.mu.Unlock()
	var only *sendLog
	n := 0
	for _, l := range m.logs {
		if l.room != room {
			continue
		}
		if l.peer != nil && publisher != "" && l.peer.ID() == publisher {
			return l
		}
		only, n = l, n+1
	}
	if n == 1 {
		return only
	}
	return nil
}

// trackDelay looks up one received track's packets in its publisher's log.
type trackDelay struct {
	m     *delayMatcher
	log   *sendLog // nil: its publisher is unknown, nothing matches
	video bool
}

// lookup finds when a received payload was sent. measured says whether
// the packet counts: inside the media window and not padding only.
func (t trackDelay) lookup(payload []byte, now time.Time) (sent int64, measured, found bool) {
	if t.m == nil || !t.m.measuring.Load() || len(payload) == 0 {
		return 0, false, false
	}
	if t.log == nil {
		return 0, true, false
	}
	media := payload
	if t.video {
		if media = vp8Media(payload); len(media) == 0 {
			return 0, true, false
		}
	}
	sent, found = t.log.sentAt(media, clockAt(now))
	return sent, true, found
}

// delayRecord is the forwarding delay of one received track. A packet
// that arrives behind a newer one is a NACK repair (or was reordered): it
// is counted and timed apart, since its delay includes the loss and the
// round trip of the request.
type delayRecord struct {
	inOrder, repairs   latencyHist
	matched, unmatched uint64 // in-order packets found in the log or not
	repaired           uint64 // every packet behind a newer one
}

func (d *delayRecord) record(fresh, found bool, delay time.Duration) {
	switch {
	case !fresh:
		d.repaired++
		if found {
			d.repairs.add(delay)
		}
	case found:
		d.matched++
		d.inOrder.add(delay)
	default:
		d.unmatched++
	}
}

// ForwardDelay is the time from a publisher's send (just before pion
// writes the packet) to a subscriber's read (after pion decrypted it), per
// packet received during the media window, for video and audio apart.
type ForwardDelay struct {
	Video DelayStats `json:"video"`
	Audio DelayStats `json:"audio"`
}

// DelayStats sums the delay of one kind of track over every subscriber.
type DelayStats struct {
	// Millis are the percentiles of the packets that arrived in order and
	// were matched to their send (Matched of them).
	Millis  Percentiles `json:"millis"`
	Matched uint64      `json:"matched"`
	// Unmatched arrived in order but their send was not found: a publisher
	// the tool could not tell, or a send pushed out of its log.
	Unmatched uint64 `json:"unmatched"`
	// Repairs arrived behind a newer packet (NACK retransmissions, or
	// reordering): not in Millis; RepairMillis times those matched.
	Repairs      uint64      `json:"repairs"`
	RepairMillis Percentiles `json:"repairMillis"`
	// Packets are all media packets received in the window (padding-only
	// probes are not): Matched + Unmatched + Repairs.
	Packets uint64 `json:"packets"`
}

func (d *delayRecord) merge(o *delayRecord) {
	d.inOrder.merge(&o.inOrder)
	d.repairs.merge(&o.repairs)
	d.matched += o.matched
	d.unmatched += o.unmatched
	d.repaired += o.repaired
}

func (d *delayRecord) stats() DelayStats {
	return DelayStats{Millis: d.inOrder.millis(), Matched: d.matched, Unmatched: d.unmatched,
		Repairs: d.repaired, RepairMillis: d.repairs.millis(), Packets: d.matched + d.unmatched + d.repaired}
}

// forwardDelay sums what every peer's tracks measured.
func forwardDelay(logs []*receiveLog) ForwardDelay {
	var video, audio delayRecord
	for _, r := range logs {
		r.mu.Lock()
		for _, t := range r.tracks {
			if t.video {
				video.merge(&t.delay)
			} else {
				audio.merge(&t.delay)
			}
		}
		r.mu.Unlock()
	}
	return ForwardDelay{Video: video.stats(), Audio: audio.stats()}
}
