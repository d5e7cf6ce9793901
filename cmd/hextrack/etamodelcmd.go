package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hextrack/hextrack/eta/etalearn"
	"github.com/hextrack/hextrack/eta/etamodel"
)

// runETAModel is `hextrack eta-model show|rollback`: the models a server
// trained from its archive keeps in its model directory.
func runETAModel(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("eta-model", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var c Config
	dir := fs.String("dir", os.Getenv("HEXTRACK_ETA_MODEL_DIR"), "the model directory (serve's --eta-model-dir); empty: eta-models in --data-dir (HEXTRACK_ETA_MODEL_DIR)")
	dataDir := os.Getenv("HEXTRACK_DATA_DIR")
	if dataDir == "" {
		dataDir = defaultDataDir()
	}
	fs.StringVar(&c.DataDir, "data-dir", dataDir, "the server's --data-dir (HEXTRACK_DATA_DIR)")
	fs.Usage = func() {
		fmt.Fprint(stdout, `usage: hextrack eta-model show [flags]
       hextrack eta-model rollback [flags]

A server that trains its ETA model from the archive (serve
--eta-train-every) keeps the model it serves as current.model in its model
directory and the model that one replaced as previous.model.

  show      prints both models' version, fingerprint and provenance.
  rollback  swaps them: the previous model becomes the current one (a
            second rollback undoes the first). A running server serves
            the swapped-in model within 30 s (it watches current.model);
            a server started later serves it at start.

Flags:
`)
		fs.PrintDefaults()
	}
	if len(args) > 0 && isHelp(args[0]) {
		fs.Usage()
		return flag.ErrHelp
	}
	if len(args) == 0 || (args[0] != "show" && args[0] != "rollback") {
		fs.Usage()
		return errors.New("eta-model: give show or rollback")
	}
	verb := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c.ETAModelDir = *dir
	d := c.etaModelDir()
	if d == "" {
		return errors.New("eta-model: give --dir or --data-dir")
	}
	if verb == "rollback" {
		if err := etalearn.SwapFiles(d); err != nil {
			return fmt.Errorf("eta-model rollback: %s: %w", d, err)
		}
		fmt.Fprintf(stdout, "rolled back in %s\n", d)
	}
	for _, f := range []string{etalearn.CurrentFile, etalearn.PreviousFile} {
		m, err := etamodel.ReadFile(filepath.Join(d, f))
		if err != nil {
			fmt.Fprintf(stdout, "%-15s none (%v)\n", f, err)
			continue
		}
		fmt.Fprintf(stdout, "%-15s %s fingerprint %s, trained %s on %d trips, tz %s\n", f, m.Info.Version, m.Fingerprint(),
			m.Info.TrainedAt.Format("2006-01-02 15:04:05Z07:00"), m.Info.TrainTrips, m.Info.TZ)
	}
	return nil
}
