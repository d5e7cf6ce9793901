package webhook_test

import (
	"fmt"
	"log/slog"
	"strings"
)

// fmtAll prints v as fmt and slog would.
func fmtAll(v any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %+v %s", v, v, v)
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "v", v)
	return b.String()
}
