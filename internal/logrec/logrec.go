// Package logrec is a log/slog handler for tests: it keeps every record
// with all its attributes, those its logger was built With included, so a
// test can check what a line carries, and that it carries each key once.
package logrec

import (
	"context"
	"log/slog"
	"slices"
	"sync"
)

// Recorder keeps the records of every logger built from it.
type Recorder struct {
	mu    *sync.Mutex
	lines *[]Line
	attrs []slog.Attr
}

// Line is one record: its message and its attributes, key -> values in
// the order they were added.
type Line struct {
	Msg   string
	Attrs map[string][]string
}

// New returns an empty Recorder.
func New() *Recorder { return &Recorder{mu: &sync.Mutex{}, lines: &[]Line{}} }

// Enabled records every level.
func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps rec.
func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	l := Line{Msg: rec.Message, Attrs: map[string][]string{}}
	for _, a := range r.attrs {
		l.Attrs[a.Key] = append(l.Attrs[a.Key], a.Value.String())
	}
	rec.Attrs(func(a slog.Attr) bool {
		l.Attrs[a.Key] = append(l.Attrs[a.Key], a.Value.String())
		return true
	})
	r.mu.Lock()
	*r.lines = append(*r.lines, l)
	r.mu.Unlock()
	return nil
}

// WithAttrs returns a handler recording into r with as added.
func (r *Recorder) WithAttrs(as []slog.Attr) slog.Handler {
	n := *r
	n.attrs = append(slices.Clip(r.attrs), as...)
	return &n
}

// WithGroup is not used by Confab's logs; groups are ignored.
func (r *Recorder) WithGroup(string) slog.Handler { return r }

// Find returns the lines with message msg.
func (r *Recorder) Find(msg string) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Line
	for _, l := range *r.lines {
		if l.Msg == msg {
			out = append(out, l)
		}
	}
	return out
}

// All returns every line so far.
func (r *Recorder) All() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(*r.lines)
}

// Repeated returns the keys a line carries more than once.
func (l Line) Repeated() []string {
	var out []string
	for k, vs := range l.Attrs {
		if len(vs) > 1 {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
