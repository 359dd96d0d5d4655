package pgembed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Binaries are the PostgreSQL server programs of one installation.
type Binaries struct {
	Dir     string // directory holding initdb and postgres
	Version int    // major version, e.g. 15
}

// ErrNoBinaries says the server programs are not installed. Its text tells
// the operator what to install or how to avoid needing them.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH " +
	"or in /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, /usr/local/pgsql/bin: install them " +
	"(Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server; " +
	"macOS: brew install postgresql) or set database.url (PARLEY_DATABASE_URL) to use an existing server")

// candidateDirs lists where server binaries may live, most preferred first:
// the directory of a `postgres` found on PATH (through symlinks, as Debian's
// wrappers are), then the distribution layouts, newest version first.
func candidateDirs() []string {
	var dirs []string
	for _, name := range []string{"postgres", "initdb"} {
		if p, err := exec.LookPath(name); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				dirs = append(dirs, filepath.Dir(real))
			}
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	var globbed []string
	for _, pat := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql*/bin"} {
		m, _ := filepath.Glob(pat)
		globbed = append(globbed, m...)
	}
	sort.SliceStable(globbed, func(i, j int) bool { return versionInPath(globbed[i]) > versionInPath(globbed[j]) })
	return append(dirs, globbed...)
}

var digits = regexp.MustCompile(`\d+`)

func versionInPath(p string) int {
	n, _ := strconv.Atoi(digits.FindString(p))
	return n
}

// FindBinaries returns the first installation that has both initdb and
// postgres. When want is non-zero, only that major version is accepted:
// a cluster can only be started by the major version that made it.
func FindBinaries(ctx context.Context, want int) (Binaries, error) {
	seen := map[string]bool{}
	var other []int
	for _, dir := range candidateDirs() {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if !isExec(filepath.Join(dir, "initdb")) || !isExec(filepath.Join(dir, "postgres")) {
			continue
		}
		v, err := serverVersion(ctx, filepath.Join(dir, "postgres"))
		if err != nil {
			continue
		}
		if want == 0 || v == want {
			return Binaries{Dir: dir, Version: v}, nil
		}
		other = append(other, v)
	}
	if len(other) > 0 {
		return Binaries{}, fmt.Errorf("the embedded cluster was made by PostgreSQL %d but only version(s) %v are installed: "+
			"install PostgreSQL %d's server binaries, or move the cluster aside to start a new one", want, other, want)
	}
	return Binaries{}, ErrNoBinaries
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// serverVersion runs `postgres --version` ("postgres (PostgreSQL) 15.18 …").
func serverVersion(ctx context.Context, postgres string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postgres, "--version").Output()
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(out))
	for i, f := range fields {
		if f == "(PostgreSQL)" && i+1 < len(fields) {
			major, _, _ := strings.Cut(fields[i+1], ".")
			return strconv.Atoi(major)
		}
	}
	return 0, fmt.Errorf("cannot read version from %q", out)
}

func (b Binaries) path(name string) string { return filepath.Join(b.Dir, name) }
