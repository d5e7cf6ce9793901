package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one hextrack server with one token.
type Client struct {
	base  string
	token string
	http  *http.Client
	watch WatchConfig // WatchTrip's; see WithWatch
}

// New returns a client for the server at baseURL (e.g. "http://localhost:8080").
// hc may be nil (a client with a 30 s timeout is used).
func New(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: hc}
}

// WithToken returns a copy of c using another token.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// Token is the bearer token in use.
func (c *Client) Token() string { return c.token }

// BaseURL is the server's base URL.
func (c *Client) BaseURL() string { return c.base }

// HTTPClient is the underlying *http.Client.
func (c *Client) HTTPClient() *http.Client { return c.http }

// Error is an error answer of the API.
type Error struct {
	Status  int
	Code    string
	Message string
	Details json.RawMessage
}

func (e *Error) Error() string {
	return fmt.Sprintf("hextrack: %d %s: %s", e.Status, e.Code, e.Message)
}

// Do sends a request with a JSON body (nil for none) and decodes a JSON
// answer into out (nil to discard). hdr adds request headers. It returns the
// response headers and status for callers that need ETags and the like.
func (c *Client) Do(ctx context.Context, method, path string, body any, out any, hdr http.Header) (http.Header, int, error) {
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		default:
			buf, err := json.Marshal(body)
			if err != nil {
				return nil, 0, err
			}
			rd = bytes.NewReader(buf)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.Header, resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		return resp.Header, resp.StatusCode, apiError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, resp.StatusCode, fmt.Errorf("hextrack: decode %s %s: %w", method, path, err)
		}
	}
	return resp.Header, resp.StatusCode, nil
}

// apiError is the *Error of an error answer with status and body data.
func apiError(status int, data []byte) *Error {
	var eb struct {
		Error struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(data, &eb)
	return &Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message, Details: eb.Error.Details}
}

// call sends a request (see Do) and decodes its JSON answer into a T.
func call[T any](ctx context.Context, c *Client, method, path string, body any, hdr http.Header) (T, error) {
	var out T
	_, _, err := c.Do(ctx, method, path, body, &out, hdr)
	return out, err
}

// DevToken mints a token through POST /v1/dev/token (dev mode servers only).
func (c *Client) DevToken(ctx context.Context, role, sub string, ttl time.Duration) (string, error) {
	out, err := call[struct {
		Token string `json:"token"`
	}](ctx, c, http.MethodPost, "/v1/dev/token", map[string]string{"role": role, "sub": sub, "ttl": ttl.String()}, nil)
	return out.Token, err
}

// Ping is one GPS fix to send.
type Ping struct {
	Lat      float64   `json:"lat"`
	Lng      float64   `json:"lng"`
	TS       time.Time `json:"ts"`
	Seq      int64     `json:"seq"`
	Accuracy *float64  `json:"accuracy,omitempty"`
	Speed    *float64  `json:"speed,omitempty"`
	Heading  *float64  `json:"heading,omitempty"`
}

// IngestResult is the answer to a location upload.
type IngestResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   []struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	} `json:"rejected"`
	LastSeq int64 `json:"last_seq"`
}

// SendLocations uploads a batch of pings for a driver.
func (c *Client) SendLocations(ctx context.Context, driverID string, pings []Ping) (IngestResult, error) {
	return call[IngestResult](ctx, c, http.MethodPost, driverPath(driverID, "locations"), map[string]any{"pings": pings}, nil)
}

// SendLocation uploads one ping.
func (c *Client) SendLocation(ctx context.Context, driverID string, p Ping) (IngestResult, error) {
	return call[IngestResult](ctx, c, http.MethodPost, driverPath(driverID, "locations"), p, nil)
}

// Driver is a driver's state.
type Driver struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	TripID   string `json:"trip_id"`
	Location *struct {
		Lat float64   `json:"lat"`
		Lng float64   `json:"lng"`
		TS  time.Time `json:"ts"`
	} `json:"location"`
	LastSeq int64  `json:"last_seq"`
	Cell    string `json:"cell"`
	Fresh   bool   `json:"fresh"`
}

// SetStatus sets a driver available or offline.
func (c *Client) SetStatus(ctx context.Context, driverID, status string) (Driver, error) {
	return call[Driver](ctx, c, http.MethodPut, driverPath(driverID, "status"), map[string]string{"status": status}, nil)
}

// GetDriver returns a driver's state.
func (c *Client) GetDriver(ctx context.Context, driverID string) (Driver, error) {
	return call[Driver](ctx, c, http.MethodGet, driverPath(driverID), nil, nil)
}

// NearbyDriver is one result of Nearby.
type NearbyDriver struct {
	ID        string  `json:"id"`
	Lat       float64 `json:"lat"`
	Lng       float64 `json:"lng"`
	DistanceM float64 `json:"distance_m"`
	ETAS      float64 `json:"eta_s"`
}

// Nearby lists fresh available drivers near a point, nearest first.
// radiusM and limit may be 0 for the server's defaults.
func (c *Client) Nearby(ctx context.Context, lat, lng, radiusM float64, limit int) ([]NearbyDriver, error) {
	q := url.Values{}
	q.Set("lat", strconv.FormatFloat(lat, 'f', -1, 64))
	q.Set("lng", strconv.FormatFloat(lng, 'f', -1, 64))
	if radiusM > 0 {
		q.Set("radius_m", strconv.FormatFloat(radiusM, 'f', -1, 64))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	out, err := call[struct {
		Drivers []NearbyDriver `json:"drivers"`
	}](ctx, c, http.MethodGet, "/v1/drivers/nearby?"+q.Encode(), nil, nil)
	return out.Drivers, err
}
