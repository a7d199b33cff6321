package whip

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// httpError is a refusal with its HTTP status.
type httpError struct {
	status int
	msg    string
	// challenge, with a 401, is the WWW-Authenticate header (RFC 6750).
	challenge string
	// retryAfter, with a 503, is the Retry-After header.
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.msg }

func (e *httpError) write(w http.ResponseWriter) {
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	http.Error(w, e.msg, e.status)
}

// refusal answers a Conference's error with the status its category asks.
func refusal(err error) *httpError {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadOffer):
		status = http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrUnavailable):
		status = http.StatusServiceUnavailable
	}
	herr := &httpError{status: status, msg: err.Error()}
	// A Conference at its load limits says when to come back.
	var busy interface{ RetryAfter() time.Duration }
	if status == http.StatusServiceUnavailable && errors.As(err, &busy) {
		herr.retryAfter = busy.RetryAfter()
	}
	return herr
}

// challenges of a 401: without a token, and with a bad one.
const (
	challengeMissing = `Bearer realm="confab"`
	challengeInvalid = `Bearer realm="confab", error="invalid_token"`
)
