package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nhooyr.io/websocket"
)

// DialOption configures Dial.
type DialOption func(*dialConfig)

type dialConfig struct {
	header http.Header
	client *http.Client
	logger *slog.Logger
}

// WithHeader adds HTTP headers to the WebSocket handshake (e.g. Origin).
func WithHeader(h http.Header) DialOption { return func(c *dialConfig) { c.header = h } }

// WithHTTPClient sets the HTTP client of the handshake (e.g. for test TLS certificates).
func WithHTTPClient(hc *http.Client) DialOption { return func(c *dialConfig) { c.client = hc } }

// WithLogger sets the client's logger.
func WithLogger(l *slog.Logger) DialOption { return func(c *dialConfig) { c.logger = l } }

// Client is a Go signaling client: it matches responses to requests and
// delivers everything else, in order, on Messages.
type Client struct {
	ws     *websocket.Conn
	log    *slog.Logger
	nextID atomic.Uint64

	mu      sync.Mutex
	waiters map[string]chan *Message
	// abandoned holds ids of requests whose caller stopped waiting; their
	// late responses are dropped rather than surprising Messages' reader.
	abandoned map[string]struct{}
	pending   []*Message // events not yet taken by the consumer
	wake      chan struct{}
	status    websocket.StatusCode
	err       error

	out        chan *Message
	done       chan struct{} // reader finished
	userClosed chan struct{} // Close was called
	closeOnce  sync.Once
	wg         sync.WaitGroup
}

// wsURL turns an http(s) base URL into the signaling WebSocket URL.
func wsURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("url %q: want http, https, ws or wss", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u.String(), nil
}

// Dial connects to a Confab server. url is a ws(s):// signaling URL or the
// server's http(s):// base URL.
func Dial(ctx context.Context, rawURL string, opts ...DialOption) (*Client, error) {
	cfg := dialConfig{logger: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	u, err := wsURL(rawURL)
	if err != nil {
		return nil, err
	}
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: cfg.header, HTTPClient: cfg.client})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	// Server offers for big rooms exceed the server's own 64 KiB limit.
	ws.SetReadLimit(8 << 20)
	c := &Client{
		ws: ws, log: cfg.logger,
		waiters:    map[string]chan *Message{},
		abandoned:  map[string]struct{}{},
		wake:       make(chan struct{}, 1),
		status:     -1,
		out:        make(chan *Message),
		done:       make(chan struct{}),
		userClosed: make(chan struct{}),
	}
	c.wg.Add(2)
	go c.readLoop()
	go c.deliverLoop()
	return c, nil
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	defer close(c.done)
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.status = websocket.CloseStatus(err)
			c.err = err
			for id, w := range c.waiters {
				close(w)
				delete(c.waiters, id)
			}
			c.mu.Unlock()
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			c.log.Warn("server sent malformed message", "err", err)
			continue
		}
		c.mu.Lock()
		if m.ID != "" && isResponse(m.Type) {
			if w, ok := c.waiters[m.ID]; ok {
				delete(c.waiters, m.ID)
				c.mu.Unlock()
				w <- &m
				continue
			}
			if _, ok := c.abandoned[m.ID]; ok {
				delete(c.abandoned, m.ID)
				c.mu.Unlock()
				c.log.Debug("late response to an abandoned request dropped", "id", m.ID, "type", m.Type)
				continue
			}
		}
		c.pending = append(c.pending, &m)
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func isResponse(t string) bool {
	switch t {
	case TypeWelcome, TypeAnswer, TypeOK, TypeError:
		return true
	}
	return false
}

// deliverLoop hands queued events to the consumer in order; the queue is
// unbounded so a slow consumer never stalls reading (and so never makes the
// server think this client is dead).
func (c *Client) deliverLoop() {
	defer c.wg.Done()
	defer close(c.out)
	for {
		c.mu.Lock()
		var m *Message
		if len(c.pending) > 0 {
			m = c.pending[0]
			c.pending[0] = nil
			c.pending = c.pending[1:]
		}
		c.mu.Unlock()
		if m == nil {
			select {
			case <-c.wake:
				continue
			case <-c.done:
				c.mu.Lock()
				empty := len(c.pending) == 0
				c.mu.Unlock()
				if empty {
					return
				}
				continue
			}
		}
		select {
		case c.out <- m:
		case <-c.userClosed:
			return
		}
	}
}

// Messages delivers every message that is not a response to a Request, in
// arrival order; it is closed when the connection has ended.
func (c *Client) Messages() <-chan *Message { return c.out }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// CloseStatus is the close code the server sent, or -1.
func (c *Client) CloseStatus() websocket.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Send writes m without waiting for a response.
func (c *Client) Send(m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", m.Type, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("%w: send %s: %w", ErrClosed, m.Type, err)
	}
	return nil
}

// Request sends m with a fresh id and waits for its response. An error
// response is returned as the message and an *Error.
func (c *Client) Request(ctx context.Context, m *Message) (*Message, error) {
	m.ID = strconv.FormatUint(c.nextID.Add(1), 10)
	w := make(chan *Message, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrClosed, c.err)
	}
	c.waiters[m.ID] = w
	c.mu.Unlock()
	if err := c.Send(m); err != nil {
		c.mu.Lock()
		delete(c.waiters, m.ID)
		c.mu.Unlock()
		return nil, err
	}
	select {
	case resp, ok := <-w:
		return response(m, resp, ok)
	case <-ctx.Done():
		c.mu.Lock()
		_, waiting := c.waiters[m.ID]
		if waiting {
			delete(c.waiters, m.ID)
			c.abandoned[m.ID] = struct{}{}
		}
		c.mu.Unlock()
		if !waiting {
			// The response (or the end of the connection) won the race.
			resp, ok := <-w
			return response(m, resp, ok)
		}
		return nil, fmt.Errorf("waiting for response to %s: %w", m.Type, ctx.Err())
	}
}

// response turns what a waiter received into Request's results; ok is
// false when the connection ended first.
func response(req, resp *Message, ok bool) (*Message, error) {
	if !ok {
		return nil, fmt.Errorf("%w: waiting for response to %s", ErrClosed, req.Type)
	}
	if resp.Type == TypeError {
		return resp, &Error{Code: resp.Code, Message: resp.Message, RetryAfter: resp.RetryAfter, URL: resp.URL}
	}
	return resp, nil
}

// Join enters a room and returns the welcome.
func (c *Client) Join(ctx context.Context, room, name, token string) (*Message, error) {
	return c.Request(ctx, &Message{Type: TypeJoin, Room: room, Name: strings.TrimSpace(name), Version: Version, Token: token})
}

// Close closes the connection normally (1000) and waits for the client's
// goroutines to end. It must be called even after the server has closed
// the connection, to release Messages. Later calls do nothing.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.userClosed)
		// nhooyr bounds the handshake (5 s to write, 5 s for the reply).
		err = c.ws.Close(websocket.StatusNormalClosure, "")
		c.wg.Wait()
		// The server may have closed first: nothing left to report.
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	if err != nil {
		return fmt.Errorf("close signaling connection: %w", err)
	}
	return nil
}
