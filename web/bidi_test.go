package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"nhooyr.io/websocket"
)

// bidi is a small WebDriver BiDi client: Firefox speaks the protocol
// natively, so no driver process is needed. Commands are JSON objects
// {id, method, params} answered by {type: "success"|"error", id, ...};
// events arrive as {type: "event", method, params}.
type bidi struct {
	conn    *websocket.Conn
	ctx     context.Context // the reader's; cancelled by close
	cancel  context.CancelFunc
	mu      sync.Mutex
	nextID  int
	waiting map[int]chan bidiReply
	onEvent func(method string, params json.RawMessage)
	err     error // why the reader stopped
	done    chan struct{}
}

type bidiReply struct {
	Type    string          `json:"type"`
	ID      *int            `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// dialBiDi opens a BiDi session on the WebSocket url (ws://host:port).
// onEvent, when set, receives every event on the reader goroutine.
func dialBiDi(ctx context.Context, url string, onEvent func(string, json.RawMessage)) (*bidi, error) {
	conn, _, err := websocket.Dial(ctx, strings.TrimSuffix(url, "/")+"/session", nil)
	if err != nil {
		return nil, fmt.Errorf("connect to webdriver bidi at %s: %w", url, err)
	}
	// Screenshots come back as one base64 message of a few MiB.
	conn.SetReadLimit(64 << 20)
	rctx, cancel := context.WithCancel(context.Background())
	b := &bidi{conn: conn, ctx: rctx, cancel: cancel, waiting: map[int]chan bidiReply{}, onEvent: onEvent, done: make(chan struct{})}
	go b.read()
	if err := b.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, nil); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// read dispatches replies to their callers and events to onEvent.
func (b *bidi) read() {
	defer close(b.done)
	for {
		_, data, err := b.conn.Read(b.ctx)
		if err != nil {
			b.mu.Lock()
			b.err = err
			for id, ch := range b.waiting {
				close(ch)
				delete(b.waiting, id)
			}
			b.mu.Unlock()
			return
		}
		var r bidiReply
		if err := json.Unmarshal(data, &r); err != nil {
			continue
		}
		if r.Type == "event" {
			if b.onEvent != nil {
				b.onEvent(r.Method, r.Params)
			}
			continue
		}
		if r.ID == nil {
			continue
		}
		b.mu.Lock()
		ch := b.waiting[*r.ID]
		delete(b.waiting, *r.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// call sends one command and decodes its result into out (when not nil).
func (b *bidi) call(ctx context.Context, method string, params any, out any) error {
	b.mu.Lock()
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return fmt.Errorf("bidi %s: connection closed: %w", method, err)
	}
	b.nextID++
	id := b.nextID
	ch := make(chan bidiReply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return fmt.Errorf("bidi %s: %w", method, err)
	}
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		b.forget(id)
		return fmt.Errorf("bidi %s: send: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("bidi %s: connection closed", method)
		}
		if r.Type == "error" {
			return fmt.Errorf("bidi %s: %s: %s", method, r.Error, r.Message)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(r.Result, out)
	case <-ctx.Done():
		b.forget(id)
		return fmt.Errorf("bidi %s: %w", method, ctx.Err())
	}
}

func (b *bidi) forget(id int) {
	b.mu.Lock()
	delete(b.waiting, id)
	b.mu.Unlock()
}

// topContext returns the id of the first top-level browsing context.
func (b *bidi) topContext(ctx context.Context) (string, error) {
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := b.call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0}, &tree); err != nil {
		return "", err
	}
	if len(tree.Contexts) == 0 {
		return "", errors.New("bidi: no browsing context")
	}
	return tree.Contexts[0].Context, nil
}

// evaluate runs expression (which may return a promise) in a browsing
// context and returns its value, which must be a string.
func (b *bidi) evaluate(ctx context.Context, context, expression string) (string, error) {
	var r struct {
		Type   string `json:"type"`
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := b.call(ctx, "script.evaluate", map[string]any{
		"expression": expression, "target": map[string]any{"context": context},
		"awaitPromise": true, "resultOwnership": "none",
	}, &r)
	if err != nil {
		return "", err
	}
	if r.Type == "exception" {
		return "", fmt.Errorf("script exception: %s", r.ExceptionDetails.Text)
	}
	if r.Result.Type != "string" {
		return "", fmt.Errorf("script returned a %s, not a string", r.Result.Type)
	}
	var s string
	err = json.Unmarshal(r.Result.Value, &s)
	return s, err
}

// close ends the connection and waits for the reader.
func (b *bidi) close() {
	b.conn.Close(websocket.StatusNormalClosure, "")
	b.cancel()
	<-b.done
}
