package api_test

import "github.com/hextrack/hextrack/api"

// unlimited turns every request limit off, for tests about something else
// that send faster than a person would (limits are tested in security_test.go).
var unlimited = api.LimitConfig{SubjectRate: -1, IPRate: -1, StreamIPRate: -1, StreamRate: -1}
