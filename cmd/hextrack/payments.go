package main

import (
	"flag"
	"log/slog"
	"strings"

	"github.com/hextrack/hextrack/payment/paymentredis"
)

// PaymentSettings configure online payments of deliveries.
type PaymentSettings struct {
	// WebhookSecrets verify gateway webhooks: HEXTRACK_PAYMENT_WEBHOOK_SECRETS
	// (or the file named by HEXTRACK_PAYMENT_WEBHOOK_SECRETS_FILE),
	// comma-separated; list the new secret beside the old one while
	// rotating. Env only: a flag would show the secrets in ps. Empty: every
	// webhook gets 401 (dev mode: devWebhookSecret).
	WebhookSecrets []string
	// GatewayURL is the payment gateway's checkout base URL:
	// HEXTRACK_PAYMENT_GATEWAY_URL, --payment-gateway-url. Zero:
	// http://localhost:8090 (drivesim gateway's default listen address).
	GatewayURL string
	// Currency of payments: HEXTRACK_PAYMENT_CURRENCY. Zero: EUR.
	Currency string
}

// devWebhookSecret is the webhook secret of dev mode when none is set, so
// that "drivesim gateway --secret dev-webhook-secret" works out of the box.
const devWebhookSecret = "dev-webhook-secret"

// paymentFlags registers the payment flags and reads the secrets from env.
func paymentFlags(fs *flag.FlagSet, p *PaymentSettings) error {
	fs.StringVar(&p.GatewayURL, "payment-gateway-url", envOr("HEXTRACK_PAYMENT_GATEWAY_URL", "http://localhost:8090"),
		"payment gateway checkout base URL (HEXTRACK_PAYMENT_GATEWAY_URL)")
	fs.StringVar(&p.Currency, "payment-currency", envOr("HEXTRACK_PAYMENT_CURRENCY", "EUR"), "currency of payments (HEXTRACK_PAYMENT_CURRENCY)")
	s, err := readSecret("HEXTRACK_PAYMENT_WEBHOOK_SECRETS")
	if err != nil {
		return err
	}
	p.WebhookSecrets = splitSecrets(s)
	return nil
}

func splitSecrets(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// config is the paymentredis.Config of p; it logs how webhooks are
// verified (never the secrets).
func (p PaymentSettings) config(dev bool, log *slog.Logger) paymentredis.Config {
	secrets := p.WebhookSecrets
	switch {
	case len(secrets) == 0 && dev:
		secrets = []string{devWebhookSecret}
		log.Warn("payments: dev mode webhook secret \"" + devWebhookSecret + "\" (set HEXTRACK_PAYMENT_WEBHOOK_SECRETS)")
	case len(secrets) == 0:
		log.Warn("payments: HEXTRACK_PAYMENT_WEBHOOK_SECRETS is not set: every payment webhook gets 401")
	default:
		log.Info("payments: webhook secrets configured", "count", len(secrets), "gateway", p.GatewayURL)
	}
	cfg := paymentredis.Config{GatewayURL: p.GatewayURL, Currency: p.Currency}
	for _, s := range secrets {
		cfg.Secrets = append(cfg.Secrets, []byte(s))
	}
	return cfg
}
