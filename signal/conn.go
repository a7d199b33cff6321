package signal

import (
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
	ReadLimit          int64         // largest message, default 64 KiB (larger: close 1009)
	WriteTimeout       time.Duration // per frame, default 10 s
	PingInterval       time.Duration // default 15 s
	PongTimeout        time.Duration // default 30 s: no pong by then and the connection is dropped
	QueueSize          int           // queued outgoing messages, default 512 (overflow: close 1008)
	OriginPatterns     []string      // allowed Origin hosts besides the request's own
	InsecureSkipVerify bool          // accept any Origin (development and tests)
	// MessageRate and MessageBurst bound what one connection may send
	// (token bucket, default 50/s with bursts of 100). Messages over the
	// limit are dropped with a rate_limited error; a client with more
	// than a burst dropped within one second is disconnected (1008).
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

// closeRequest is how the connection should end.
type closeRequest struct {
	code   websocket.StatusCode
	reason string
	// flush sends what is queued first. Not when the queue itself is the
	// problem (slow consumer) or the peer is unreachable.
	flush bool
	// abort drops the TCP connection without a close handshake: the peer
	// stopped answering, so waiting for its close frame would only hold
	// the connection for nhooyr's 5 s handshake timeout.
	abort bool
}

// Conn is one participant's signaling WebSocket on the server. One
// goroutine (the caller's) reads; Send only queues, and a writer goroutine
// drains the queue, so a slow client can never block the room. The caller
// must keep calling Read: pongs and the peer's close frame are only seen
// while a Read is active.
type Conn struct {
	ws     *websocket.Conn
	opts   ConnOptions
	remote string
	log    *slog.Logger

	limiter readLimiter // used by Read only

	queue     *outQueue
	closeOnce sync.Once
	req       closeRequest  // written once, before closing is closed
	closing   chan struct{} // closed when the connection starts to close
	// kill cancels any Read in progress, which makes nhooyr drop the TCP
	// connection: the last resort when a close handshake hangs.
	kill    context.Context
	killNow context.CancelFunc
	done    chan struct{} // closed when every goroutine has ended
	wg      sync.WaitGroup
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
		log:     opts.Logger.With("remote", r.RemoteAddr),
		limiter: newReadLimiter(opts.MessageRate, opts.MessageBurst, time.Now()),
		queue:   newOutQueue(opts.QueueSize),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.kill, c.killNow = context.WithCancel(context.Background())
	c.wg.Add(2)
	go c.writeLoop()
	go c.pingLoop()
	go func() {
		c.wg.Wait()
		c.killNow()
		close(c.done)
	}()
	return c, nil
}

// RemoteAddr is the client's address as the HTTP server saw it.
func (c *Conn) RemoteAddr() string { return c.remote }

// Done is closed once the connection and its goroutines are finished.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Read returns the next message. It returns an error wrapping ErrClosed
// once the socket is gone. A frame that is not a UTF-8 JSON object of the
// right shape is answered with a bad_message error and closes the
// connection (1007); a binary frame closes it (1003); both return the
// *Error. Read does not Validate, so that the caller can answer with the
// request's id. Cancelling ctx closes the connection (nhooyr's rule).
func (c *Conn) Read(ctx context.Context) (*Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.kill, cancel)()
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			c.shut(closeRequest{code: websocket.StatusNormalClosure, flush: true})
			return nil, fmt.Errorf("%w: read: %w", ErrClosed, err)
		}
		if verdict := c.limiter.admit(time.Now()); verdict != admitOK {
			if e := c.overLimit(verdict); e != nil {
				return nil, e
			}
			continue
		}
		if typ != websocket.MessageText {
			c.log.Info("signaling client sent a binary frame, disconnecting")
			c.shut(closeRequest{code: websocket.StatusUnsupportedData, reason: "binary frame"})
			return nil, Errorf(CodeBadMessage, "binary frames are not part of the protocol")
		}
		m, perr := Decode(b)
		if perr != nil {
			c.log.Info("signaling client sent a malformed message, disconnecting", "err", perr.Message)
			_ = c.SendError("", perr)
			c.shut(closeRequest{code: websocket.StatusInvalidFramePayloadData, reason: "malformed message", flush: true})
			return nil, perr
		}
		return m, nil
	}
}

// Send queues m for the writer without blocking. When the queue is full
// the client is too slow: the connection closes (1008) and Send returns
// ErrSlowConsumer. After Close it returns ErrClosed.
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
	if c.queue.push(b) {
		return nil
	}
	c.log.Warn("signaling client too slow, disconnecting", "queued", c.queue.len(), "type", m.Type)
	c.shut(closeRequest{code: websocket.StatusPolicyViolation, reason: "slow consumer"})
	return ErrSlowConsumer
}

// SendError queues an error message; id is the request it answers, or "".
func (c *Conn) SendError(id string, e *Error) error {
	return c.Send(&Message{Type: TypeError, ID: id, Code: e.Code, Message: e.Message, RetryAfter: e.RetryAfter, URL: e.URL})
}

// Close sends what is queued (within WriteTimeout) and closes with code and
// reason; the close handshake gets another WriteTimeout while a Read is
// active (without one, nhooyr's own 5 s bounds apply). It returns at once;
// Done tells when the connection is finished. Only the first call (or the
// first of Close and an internal close, such as a slow consumer's) decides
// the code; later calls do nothing.
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	c.shut(closeRequest{code: code, reason: reason, flush: true})
}

func (c *Conn) shut(req closeRequest) {
	c.closeOnce.Do(func() {
		c.req = req
		close(c.closing)
	})
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.queue.ready:
			for {
				b, ok := c.queue.pop()
				if !ok {
					break
				}
				ctx, cancel := context.WithTimeout(c.kill, c.opts.WriteTimeout)
				err := c.ws.Write(ctx, websocket.MessageText, b)
				cancel()
				if err != nil {
					// nhooyr has already dropped the connection (a write that
					// times out closes it), so there is no one to say goodbye to.
					c.log.Info("signaling write failed, disconnecting", "err", err)
					c.shut(closeRequest{code: websocket.StatusPolicyViolation, reason: "write failed", abort: true})
					c.finish()
					return
				}
				select {
				case <-c.closing: // what is left is flushed, or not, as Close asked
					c.finish()
					return
				default:
				}
			}
		case <-c.closing:
			c.finish()
			return
		}
	}
}

// finish ends the connection as c.req says. The flush and the close
// handshake each get WriteTimeout; past that the TCP connection is dropped.
func (c *Conn) finish() {
	req := c.req
	if req.abort {
		_ = c.ws.CloseNow()
		return
	}
	if req.flush {
		ctx, cancel := context.WithTimeout(c.kill, c.opts.WriteTimeout)
		c.drain(ctx)
		cancel()
	}
	// nhooyr bounds the handshake itself (5 s to write our close frame, 5 s
	// for the reply), but while the caller's Read is active it waits for
	// that Read; cancelling it keeps the whole close within WriteTimeout.
	t := time.AfterFunc(c.opts.WriteTimeout, c.killNow)
	defer t.Stop()
	if err := c.ws.Close(req.code, req.reason); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Debug("signaling close handshake", "code", int(req.code), "err", err)
	}
}

// drain writes what is queued until the queue is empty or a write fails.
func (c *Conn) drain(ctx context.Context) {
	for {
		b, ok := c.queue.pop()
		if !ok || c.ws.Write(ctx, websocket.MessageText, b) != nil {
			return
		}
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
		ctx, cancel := context.WithTimeout(c.kill, c.opts.PongTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			select {
			case <-c.closing:
			default:
				c.log.Info("signaling client stopped answering pings, disconnecting", "err", err)
				c.shut(closeRequest{code: websocket.StatusPolicyViolation, reason: "ping timeout", abort: true})
			}
			return
		}
	}
}

// IsClosed reports whether err means the connection is gone.
func IsClosed(err error) bool { return errors.Is(err, ErrClosed) }
