package signal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"nhooyr.io/websocket"
)

// ConnOptions configure the server side of a signaling WebSocket. Zero
// values take the defaults documented in docs/protocol.md.
type ConnOptions struct {
	ReadLimit          int64         // largest frame, default 64 KiB (larger: close 1009)
	WriteTimeout       time.Duration // per frame, default 10 s
	PingInterval       time.Duration // default 15 s
	PongTimeout        time.Duration // default 30 s
	QueueSize          int           // queued outgoing messages, default 512 (overflow: close 1008)
	OriginPatterns     []string      // allowed Origin hosts besides the request's own
	InsecureSkipVerify bool          // accept any Origin
	// MessageRate and MessageBurst bound what one connection may send
	// (token bucket, default 50/s with bursts of 100). Messages over the
	// limit are dropped with a rate_limited error; a client that keeps
	// going for another burst's worth is disconnected (1008).
	MessageRate  float64
	MessageBurst int
	Logger       *slog.Logger
}

func (o *ConnOptions) setDefaults() {
	if o.ReadLimit <= 0 {
		o.ReadLimit = 64 << 10
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 15 * time.Second
	}
	if o.PongTimeout <= 0 {
		o.PongTimeout = 30 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 512
	}
	if o.MessageRate <= 0 {
		o.MessageRate = 50
	}
	if o.MessageBurst <= 0 {
		o.MessageBurst = 100
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// bucket is a token bucket refilled by elapsed time; only the reader uses it.
type bucket struct {
	rate, tokens, burst float64
	last                time.Time
}

func (b *bucket) allow(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// closeRequest is what Close hands to the writer goroutine.
type closeRequest struct {
	code   websocket.StatusCode
	reason string
}

// Conn is one participant's signaling WebSocket on the server. One
// goroutine (the caller's) reads; Send only queues, and a writer goroutine
// drains the queue, so a slow client can never block the room.
type Conn struct {
	ws     *websocket.Conn
	opts   ConnOptions
	remote string

	limit     bucket
	dropped   int       // messages over the limit since the last allowed one
	lastWarn  time.Time // when rate_limited was last sent
	queue     chan []byte
	closeReq  chan closeRequest
	closeOnce sync.Once
	closing   chan struct{} // closed when Close was called
	done      chan struct{} // closed when every goroutine has ended
	wg        sync.WaitGroup
}

// Accept upgrades an HTTP request to a signaling connection.
func Accept(w http.ResponseWriter, r *http.Request, opts ConnOptions) (*Conn, error) {
	opts.setDefaults()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:     opts.OriginPatterns,
		InsecureSkipVerify: opts.InsecureSkipVerify,
	})
	if err != nil {
		return nil, fmt.Errorf("accept websocket: %w", err)
	}
	ws.SetReadLimit(opts.ReadLimit)
	c := &Conn{
		ws: ws, opts: opts, remote: r.RemoteAddr,
		queue:    make(chan []byte, opts.QueueSize),
		limit:    bucket{rate: opts.MessageRate, tokens: float64(opts.MessageBurst), burst: float64(opts.MessageBurst), last: time.Now()},
		closeReq: make(chan closeRequest, 1),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.wg.Add(2)
	go c.writeLoop()
	go c.pingLoop()
	go func() {
		c.wg.Wait()
		close(c.done)
	}()
	return c, nil
}

// RemoteAddr is the client's address as the HTTP server saw it.
func (c *Conn) RemoteAddr() string { return c.remote }

// Done is closed once the connection and its goroutines are finished.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Read returns the next message. A frame that is not a JSON object of the
// right shape is answered with a bad_message error and closes the
// connection (1007); a binary frame closes it (1003). Read does not
// Validate, so that the caller can answer with the request's id.
func (c *Conn) Read(ctx context.Context) (*Message, error) {
	typ, b, err := c.ws.Read(ctx)
	for err == nil && !c.limit.allow(time.Now()) {
		c.dropped++
		if c.dropped > c.opts.MessageBurst {
			c.opts.Logger.Info("signaling client over its message rate, disconnecting", "remote", c.remote)
			_ = c.SendError("", Errorf(CodeRateLimited, "too many messages: more than %.0f per second", c.opts.MessageRate))
			c.Close(websocket.StatusPolicyViolation, "rate limit")
			return nil, Errorf(CodeRateLimited, "rate limit")
		}
		if now := time.Now(); now.Sub(c.lastWarn) >= time.Second {
			c.lastWarn = now
			_ = c.SendError("", Errorf(CodeRateLimited, "message dropped: more than %.0f messages per second", c.opts.MessageRate))
		}
		typ, b, err = c.ws.Read(ctx)
	}
	if err != nil {
		c.Close(websocket.StatusNormalClosure, "")
		return nil, fmt.Errorf("%w: %v", ErrClosed, err)
	}
	c.dropped = 0
	if typ != websocket.MessageText {
		e := Errorf(CodeBadMessage, "binary frames are not part of the protocol")
		c.Close(websocket.StatusUnsupportedData, "binary frame")
		return nil, e
	}
	m, perr := Decode(b)
	if perr != nil {
		_ = c.SendError("", perr)
		c.Close(websocket.StatusInvalidFramePayloadData, "malformed message")
		return nil, perr
	}
	return m, nil
}

// Decode parses one frame. It fails for anything but a JSON object whose
// known fields have the right types.
func Decode(b []byte) (*Message, *Error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return nil, Errorf(CodeBadMessage, "a message must be a JSON object")
	}
	var m Message
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, Errorf(CodeBadMessage, "malformed JSON: %v", err)
	}
	return &m, nil
}

// Send queues m for the writer without blocking.
func (c *Conn) Send(m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", m.Type, err)
	}
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	select {
	case c.queue <- b:
		return nil
	default:
		c.opts.Logger.Warn("signaling client too slow, disconnecting", "remote", c.remote, "queued", len(c.queue))
		c.Close(websocket.StatusPolicyViolation, "slow consumer")
		return ErrSlowConsumer
	}
}

// SendError queues an error response.
func (c *Conn) SendError(id string, e *Error) error {
	return c.Send(&Message{Type: TypeError, ID: id, Code: e.Code, Message: e.Message})
}

// Close flushes what is queued (each frame bounded by the write timeout)
// and closes with code and reason. It returns at once; Done tells when the
// connection is finished. Later calls do nothing.
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeReq <- closeRequest{code: code, reason: reason}
		close(c.closing)
	})
}

func (c *Conn) write(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case b := <-c.queue:
			if err := c.write(b); err != nil {
				c.Close(websocket.StatusInternalError, "write failed")
				c.finish(closeRequest{code: websocket.StatusInternalError, reason: "write failed"}, false)
				return
			}
		case req := <-c.closeReq:
			c.finish(req, true)
			return
		}
	}
}

// finish sends what is still queued (when flush is set) and closes.
func (c *Conn) finish(req closeRequest, flush bool) {
	for flush {
		select {
		case b := <-c.queue:
			if c.write(b) != nil {
				flush = false
			}
		default:
			flush = false
		}
	}
	// The close handshake waits for the client's reply; bound it.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.ws.Close(req.code, req.reason)
	}()
	select {
	case <-done:
	case <-time.After(c.opts.WriteTimeout):
		_ = c.ws.CloseNow()
		<-done
	}
}

func (c *Conn) pingLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.PongTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			select {
			case <-c.closing:
			default:
				c.opts.Logger.Info("signaling client stopped answering pings", "remote", c.remote, "err", err)
				c.Close(websocket.StatusPolicyViolation, "ping timeout")
			}
			return
		}
	}
}

// IsClosed reports whether err means the connection is gone.
func IsClosed(err error) bool { return errors.Is(err, ErrClosed) }
