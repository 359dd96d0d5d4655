package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mbox"
)

// importBatch is how many messages go into one transaction.
const importBatch = 500

func archiveImportCmd(e *env) *cobra.Command {
	var format, rejects string
	c := &cobra.Command{
		Use:   "import LIST FILE...",
		Short: "Import mbox files or Maildir folders into a list's archive (no mail is sent)",
		Long: `Import messages into a list's archive, in the order of the files given and of
the messages in them (Maildir: delivery order). Imported posts keep their
original dates and are not sent to the members. Re-importing is harmless:
posts already archived are counted as duplicates. Messages that cannot be
parsed are reported (and with --rejects written to an mbox file), never
dropped silently.`,
		Example: `  parley archive import dev@lists.example.org old-archive.mbox
  parley archive import dev@lists.example.org ~/Maildir/.lists.dev --rejects bad.mbox`,
		Args: nArgs(2, -1, "LIST and at least one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			f := mbox.MboxRD
			switch format {
			case "mboxrd":
			case "mboxo":
				f = mbox.MboxO
			default:
				return errs.Invalidf("--format %q: want mboxrd or mboxo", format)
			}
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				now := time.Now()
				im := &importer{e: e, c: c, svc: app.NewIngest(e.cfg, d, e.log), list: l, format: f, start: now,
					lastReport: now, rejectsPath: rejects}
				defer im.closeRejects()
				return im.run(args[1:])
			})
		},
	}
	c.Flags().StringVar(&format, "format", "mboxrd", "mbox quoting convention: mboxrd or mboxo")
	c.Flags().StringVar(&rejects, "rejects", "", "write messages that cannot be imported to this mbox file")
	return c
}

// importer feeds files to ingest.Import in batches and reports progress.
type importer struct {
	e      *env
	c      *cobra.Command
	svc    *ingest.Service
	list   lists.List
	format mbox.Format
	// The rejects file is made at the first rejected message: an import
	// with none leaves no empty file behind.
	rejectsPath string
	rejectsFile *os.File
	rejects     *mbox.Writer

	batch []ingest.ImportItem
	// storing is the batch being stored while the next one is read and
	// parsed: storing is the database's work and parsing is ours, so
	// doing them one after the other left half the machine idle.
	storing                   *storeJob
	imported, dups, bad, seen int
	start, lastReport         time.Time
}

// storeJob is one batch being stored in the background.
type storeJob struct {
	items []ingest.ImportItem
	res   []ingest.ImportResult
	err   error
	done  chan struct{}
}

func (im *importer) run(paths []string) error {
	err := im.feed(paths)
	if err == nil {
		err = im.flush()
	}
	if werr := im.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if im.imported > 0 {
		if err := im.svc.Imported(im.c.Context()); err != nil {
			return err
		}
	}
	im.progress(true)
	fmt.Fprintf(im.e.io.Stdout, "%s: imported %d, duplicates %d, unparseable %d (%.0f messages/s)\n",
		im.list.Address, im.imported, im.dups, im.bad, float64(im.seen)/time.Since(im.start).Seconds())
	return nil
}

// feed reads every file into batches.
func (im *importer) feed(paths []string) error {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return errs.Invalidf("%v", err)
		}
		if fi.IsDir() {
			err = im.maildir(p)
		} else {
			err = im.mboxFile(p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) mboxFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errs.Invalidf("%v", err)
	}
	defer f.Close()
	r := mbox.NewReader(f, im.format, int(im.maxBytes()))
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, mbox.ErrNotMbox) {
			return errs.Invalidf("%s: %v", path, err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		where := fmt.Sprintf("%s@%d", path, m.Offset)
		if m.TooLarge {
			im.reject(where, m.Data, "message larger than the size limit")
			continue
		}
		if err := im.add(ingest.ImportItem{Data: m.Data, Date: m.Date, Sender: m.Sender, Where: where}); err != nil {
			return err
		}
	}
}

// maildir imports cur/ and new/ of a Maildir (or the files of a plain
// directory) in delivery order: Maildir names start with the delivery time.
func (im *importer) maildir(dir string) error {
	var files []string
	for _, sub := range []string{"cur", "new"} {
		names, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		files = append(files, names...)
	}
	if len(files) == 0 {
		files, _ = filepath.Glob(filepath.Join(dir, "*"))
	}
	sort.SliceStable(files, func(i, j int) bool { return deliveryKey(files[i]) < deliveryKey(files[j]) })
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if fi.Size() > im.maxBytes() {
			im.reject(p, nil, "message larger than the size limit")
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := im.add(ingest.ImportItem{Data: data, Date: fi.ModTime(), Where: p}); err != nil {
			return err
		}
	}
	return nil
}

func deliveryKey(path string) string {
	base := filepath.Base(path)
	secs, _, _ := strings.Cut(base, ".")
	if n, err := strconv.ParseInt(secs, 10, 64); err == nil {
		return fmt.Sprintf("%020d%s", n, base)
	}
	return base
}

func (im *importer) maxBytes() int64 {
	if im.list.MaxMessage > 0 {
		return im.list.MaxMessage
	}
	return im.e.cfg.SMTP.MaxMessageBytes
}

func (im *importer) add(it ingest.ImportItem) error {
	im.batch = append(im.batch, it)
	if len(im.batch) >= importBatch {
		return im.flush()
	}
	return nil
}

// flush parses the batch, waits for the previous one to be stored, and
// starts storing this one. Batches are stored one at a time, in order, so
// articles are numbered in the order of the files.
func (im *importer) flush() error {
	if len(im.batch) == 0 {
		return nil
	}
	b, err := im.svc.PrepareImport(im.list, im.batch)
	if err != nil {
		return err
	}
	if err := im.wait(); err != nil {
		return err
	}
	job := &storeJob{items: im.batch, done: make(chan struct{})}
	im.batch, im.storing = nil, job
	go func() {
		defer close(job.done)
		job.res, job.err = im.svc.Store(im.c.Context(), b)
	}()
	return nil
}

// wait waits for the batch being stored, if any, and counts its results.
func (im *importer) wait() error {
	job := im.storing
	if job == nil {
		return nil
	}
	<-job.done
	im.storing = nil
	if job.err != nil {
		return job.err
	}
	for i, r := range job.res {
		switch {
		case r.Problem != "":
			im.reject(r.Where, job.items[i].Data, r.Problem)
		case r.Duplicate:
			im.dups++
		default:
			im.imported++
		}
	}
	im.seen += len(job.res)
	im.progress(false)
	return nil
}

func (im *importer) reject(where string, data []byte, why string) {
	im.bad++
	fmt.Fprintf(im.e.io.Stderr, "parley: %s: not imported: %s\n", where, why)
	if im.rejectsPath == "" || data == nil {
		return
	}
	if im.rejects == nil {
		f, err := os.Create(im.rejectsPath)
		if err != nil {
			fmt.Fprintf(im.e.io.Stderr, "parley: --rejects: %v\n", err)
			im.rejectsPath = ""
			return
		}
		im.rejectsFile, im.rejects = f, mbox.NewWriter(f)
	}
	_ = im.rejects.Write("", time.Now(), data)
}

// closeRejects finishes the rejects file, if one was made.
func (im *importer) closeRejects() {
	if im.rejects == nil {
		return
	}
	if err := im.rejects.Flush(); err != nil {
		fmt.Fprintf(im.e.io.Stderr, "parley: --rejects: %v\n", err)
	}
	im.rejectsFile.Close()
	fmt.Fprintf(im.e.io.Stdout, "the %d messages not imported are in %s\n", im.bad, im.rejectsPath)
}

// progress redraws one status line on a terminal, or prints a plain line
// every few seconds when stderr is a file or pipe.
func (im *importer) progress(final bool) {
	f, tty := im.e.io.Stderr.(*os.File)
	tty = tty && term.IsTerminal(int(f.Fd()))
	rate := float64(im.seen) / time.Since(im.start).Seconds()
	line := fmt.Sprintf("%d messages: %d imported, %d duplicates, %d unparseable (%.0f/s)", im.seen, im.imported, im.dups, im.bad, rate)
	switch {
	case tty && final:
		fmt.Fprintf(im.e.io.Stderr, "\r\033[K")
	case tty:
		fmt.Fprintf(im.e.io.Stderr, "\r\033[K%s", line)
	case !final && time.Since(im.lastReport) >= 5*time.Second:
		im.lastReport = time.Now()
		fmt.Fprintln(im.e.io.Stderr, line)
	}
}
