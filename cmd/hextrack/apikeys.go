package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/apikeys"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/apikey"
	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

// This file wires API keys: the node's Verifier (api.Deps.Keys) and the
// /v1/apikeys routes over the node's archive, and `hextrack apikey`.

var (
	_ api.Keys      = (*apikey.Verifier)(nil)
	_ api.Routes    = (*apikeys.Routes)(nil)
	_ apikeys.Keys  = (*apikey.Service)(nil)
	_ apikey.Store  = archiveKeys{}
	_ apikey.Lookup = archiveKeys{}
	_ apikey.Store  = (*sqlstore.Store)(nil)
	_ apikey.Lookup = (*sqlstore.Store)(nil)
)

// apiKeys are the node's API-key verifier (nil without an archive: keys
// are refused) and the /v1/apikeys routes (503 until the archive is open).
func apiKeys(a *nodeArchive, log *slog.Logger) (api.Keys, api.Routes) {
	st := archiveKeys{a}
	if a == nil {
		return nil, apikeys.New(apikey.NewService(st, nil), log)
	}
	v := apikey.NewVerifier(st, apikey.VerifierConfig{Logger: log})
	return v, apikeys.New(apikey.NewService(st, v), log)
}

// archiveKeys are the API keys in the node's archive: errArchiveNotOpen
// until it is open (apikey turns it into ErrUnavailable, a 503).
type archiveKeys struct{ a *nodeArchive }

func (k archiveKeys) store() (*sqlstore.Store, error) {
	if s := k.a.Store(); s != nil {
		return s, nil
	}
	return nil, errArchiveNotOpen
}

func (k archiveKeys) CreateAPIKey(ctx context.Context, key archive.APIKey) error {
	s, err := k.store()
	if err != nil {
		return err
	}
	return s.CreateAPIKey(ctx, key)
}

func (k archiveKeys) APIKeys(ctx context.Context) ([]archive.APIKey, error) {
	s, err := k.store()
	if err != nil {
		return nil, err
	}
	return s.APIKeys(ctx)
}

func (k archiveKeys) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	s, err := k.store()
	if err != nil {
		return err
	}
	return s.RevokeAPIKey(ctx, id, at)
}

func (k archiveKeys) APIKey(ctx context.Context, id string) (archive.APIKey, error) {
	s, err := k.store()
	if err != nil {
		return archive.APIKey{}, err
	}
	return s.APIKey(ctx, id)
}

func (k archiveKeys) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	s, err := k.store()
	if err != nil {
		return err
	}
	return s.TouchAPIKey(ctx, id, at)
}

//nolint:gosec // usage text, not a credential
const apikeyUsage = `usage: hextrack apikey create --name NAME --scopes SCOPE[,SCOPE] [--expires 90d] [archive flags]
       hextrack apikey list [--json] [archive flags]
       hextrack apikey revoke [archive flags] ID

Apikey manages the API keys of backend services, kept hashed in the
archive (the server's --database-url, else archive.db in --data-dir).

create prints the key's details on stderr and its token (hx_<id>_<secret>)
alone on stdout: the only time it is shown. A service sends it as
"Authorization: Bearer hx_…". Scopes: %s (ops implies the others).
--expires takes days (90d) or a Go duration (720h); none: never expires.

list shows every key, newest first, with its status and last use (written
at most once a minute per key and node), never a secret.

revoke stops a key at once on the server that revoked it and within 5 s on
every other (their cache of checked keys).

Flags:
`

// runAPIKey is `hextrack apikey`.
func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	var (
		c      Config
		req    apikey.CreateRequest
		scopes string
		asJSON bool
	)
	fs := flag.NewFlagSet("apikey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := archiveFlags(fs, &c); err != nil {
		return err
	}
	fs.StringVar(&req.Name, "name", "", "create: whose key it is (1-200 bytes)")
	fs.StringVar(&scopes, "scopes", "", "create: comma-separated scopes ("+strings.Join(tokens.KnownScopes(), ", ")+")")
	fs.StringVar(&req.ExpiresIn, "expires", "", "create: lifetime, e.g. 90d or 720h (empty: never expires)")
	fs.BoolVar(&asJSON, "json", false, "list: print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintf(stderr, apikeyUsage, strings.Join(tokens.KnownScopes(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if sub == "" {
		fs.Usage()
		return errors.New("apikey: want create, list or revoke")
	}
	if err := checkDatabaseURL(c.DatabaseURL); err != nil {
		return err
	}
	u := c.archiveURL()
	if u == "" {
		return errors.New("apikey: no archive: set --database-url or --data-dir")
	}
	st, err := openStore(ctx, u)
	if err != nil {
		return fmt.Errorf("apikey: %s: %w", archiveName(u), err)
	}
	defer st.Close()
	svc := apikey.NewService(st, nil)
	switch sub {
	case "create":
		if fs.NArg() > 0 {
			return fmt.Errorf("apikey create: unexpected arguments %q", fs.Args())
		}
		if scopes != "" {
			req.Scopes = strings.Split(scopes, ",")
		}
		k, err := svc.Create(ctx, req)
		if err != nil {
			return fmt.Errorf("apikey create: %w", err)
		}
		exp := "never"
		if k.Key.ExpiresAt != nil {
			exp = k.Key.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(stderr, "created API key %s (%s) with scopes %s, expires %s\n"+
			"its token follows on stdout; it is shown only this once\n",
			k.Key.ID, k.Key.Name, strings.Join(k.Key.Scopes, ","), exp)
		fmt.Fprintln(stdout, k.Token)
		return nil
	case "list":
		if fs.NArg() > 0 {
			return fmt.Errorf("apikey list: unexpected arguments %q", fs.Args())
		}
		ks, err := svc.List(ctx)
		if err != nil {
			return fmt.Errorf("apikey list: %w", err)
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"keys": ks})
		}
		printKeys(stdout, ks)
		return nil
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("apikey revoke: want one key id")
		}
		if err := svc.Revoke(ctx, fs.Arg(0)); err != nil {
			return fmt.Errorf("apikey revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked API key %s (servers refuse it within 5 s)\n", fs.Arg(0))
		return nil
	}
	return fmt.Errorf("apikey: unknown subcommand %q: want create, list or revoke", sub)
}

// printKeys writes the keys as a table.
func printKeys(w io.Writer, ks []apikey.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tSTATUS\tCREATED\tEXPIRES\tLAST USED")
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.Status,
			at(&k.CreatedAt), at(k.ExpiresAt), at(k.LastUsedAt))
	}
	_ = tw.Flush()
}
