package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
)

// pingBodies holds the bodies of ping batches (postLocations): a body is
// read into one, decoded, and the buffer reused (the decoded pings keep no
// reference to it). A new buffer starts with room for a batch of 50 pings;
// the pool empties at every GC. (The driver WebSocket has its own.)
var pingBodies = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 8<<10)) }}

func putPingBody(b *bytes.Buffer) {
	if b.Cap() <= 128<<10 {
		b.Reset()
		pingBodies.Put(b)
	}
}

// readBody reads the request body up to max bytes; more → 413.
func readBody(c echo.Context, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, max+1))
	if err := bodyErr(err, len(b), max); err != nil {
		return nil, err
	}
	return b, nil
}

// bodyErr is readBody's error for a read of n bytes that ended with err.
func bodyErr(err error, n int, max int64) error {
	if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) { // the BodyLimit middleware
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: "body too large"}
	}
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "could not read body"}
	}
	if int64(n) > max {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("body exceeds %d bytes", max)}
	}
	return nil
}

// bindJSON decodes a JSON body strictly into v (unknown fields rejected) and
// reports where a syntax or type error is.
func bindJSON(c echo.Context, v any) error {
	b, err := readBody(c, 1<<20)
	if err != nil {
		return err
	}
	return decodeJSON(b, v)
}

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: "trailing data after the JSON value"}
		}
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	msg := "malformed JSON: " + err.Error()
	switch {
	case errors.Is(err, io.EOF):
		msg = "empty body"
	case errors.As(err, &se):
		msg = fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		msg = fmt.Sprintf("%s: expected %s, got JSON %s (byte %d)", te.Field, te.Type, te.Value, te.Offset)
	}
	return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: msg}
}
