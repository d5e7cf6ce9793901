package history

import (
	"fmt"
	"html/template"
	"time"
)

// receiptPage is the printable receipt. html/template escapes every value
// (addresses and cancel reasons are the rider's text).
var receiptPage = template.Must(template.New("receipt").Funcs(template.FuncMap{
	"money": money,
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"km":    func(m float64) string { return fmt.Sprintf("%.2f km", m/1000) },
	"mins":  func(s float64) string { return fmt.Sprintf("%d min %02d s", int(s)/60, int(s)%60) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Receipt {{.TripID}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;max-width:36em;margin:2em auto;color:#111}
h1{font-size:1.4em}table{width:100%;border-collapse:collapse}td{padding:.2em 0}
td.n{text-align:right}tr.total td{border-top:1px solid #111;font-weight:bold}
@media print{body{margin:0}}
</style></head><body>
<h1>Receipt</h1>
<p>Trip <code>{{.TripID}}</code> · {{.Kind}} · {{.Status}}</p>
<table>
<tr><td>Requested</td><td class="n">{{when .RequestedAt}}</td></tr>
{{with .StartedAt}}<tr><td>Started</td><td class="n">{{when .}}</td></tr>{{end}}
<tr><td>Ended</td><td class="n">{{when .EndedAt}}</td></tr>
<tr><td>Distance</td><td class="n">{{km .DistanceM}}</td></tr>
<tr><td>Duration</td><td class="n">{{mins .DurationS}}</td></tr>
<tr><td>Waiting</td><td class="n">{{mins .WaitingS}}</td></tr>
</table>
<h2>Stops</h2>
<ol>{{range .Stops}}<li>{{.Kind}}{{if .Address}}: {{.Address}}{{end}}{{with .At}} · {{when .}}{{end}}</li>{{end}}</ol>
{{if .CancelReason}}<p>Cancelled by {{.CancelledBy}}: {{.CancelReason}}</p>{{end}}
<h2>Fare</h2>
<table>
{{$cur := .Fare.Currency}}{{range .Fare.Lines}}<tr><td>{{.Label}}</td><td class="n">{{money .Amount $cur}}</td></tr>{{end}}
<tr class="total"><td>Total</td><td class="n">{{money .Fare.Total .Fare.Currency}}</td></tr>
</table>
{{if .Payments}}<h2>Payment</h2>
<table>{{range .Payments}}<tr><td>{{.ID}} · {{.Status}} · {{when .UpdatedAt}}</td><td class="n">{{money .Amount .Currency}}</td></tr>{{end}}</table>
{{else if .PaymentMethod}}<p>Paid by {{.PaymentMethod}}.</p>{{end}}
</body></html>
`))

// money formats minor units of an ISO 4217 currency with two decimals
// (hextrack prices in cents).
func money(amount int64, currency string) string {
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	s := fmt.Sprintf("%s%d.%02d", sign, amount/100, amount%100)
	if currency != "" {
		s += " " + currency
	}
	return s
}
