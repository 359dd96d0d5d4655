// Package commands owns list administration by email: the -request,
// -join, -leave, -confirm and -owner addresses. It parses command mail,
// runs the commands with confirmation (nobody is subscribed or
// unsubscribed on the strength of a From: line alone), and answers once
// per message, carefully: never to robots, never in a loop, and at most a
// few times a day per address.
package commands

import (
	"strings"
	"unicode/utf8"
)

// Command is one parsed command line.
type Command struct {
	Name string   // lower case
	Args []string // as written
	Line string   // the original line, for the reply
}

// MaxLines bounds how many non-empty lines are read for commands.
const MaxLines = 50

// Parse reads commands from a subject and a text body: one per line,
// case-insensitive, ignoring quoted lines (">") and everything from a
// signature ("-- ") or an "end" line on. It reads at most MaxLines lines
// and never fails; unknown words come back as commands for the reply to
// explain.
func Parse(subject, body string) []Command {
	var cmds []Command
	if c, ok := parseLine(subject); ok && !isReplyMarker(c.Name) {
		cmds = append(cmds, c)
	}
	lines := 0
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "-- " || line == "--" {
			break
		}
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, ">") {
			continue
		}
		if lines++; lines > MaxLines {
			break
		}
		c, ok := parseLine(t)
		if !ok {
			continue
		}
		if c.Name == "end" || c.Name == "stop" || c.Name == "thanks" {
			break
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// parseLine splits one line into a command and its arguments.
func parseLine(line string) (Command, bool) {
	if i := strings.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i] // one line only (a subject could carry a break)
	}
	line = strings.ToValidUTF8(strings.TrimSpace(line), "")
	if utf8.RuneCountInString(line) > 500 {
		line = string([]rune(line)[:500])
	}
	f := strings.Fields(line)
	// A reply's subject: "Re: confirm abc" is the command "confirm abc".
	for len(f) > 0 && isReplyMarker(strings.ToLower(strings.TrimSuffix(f[0], ":"))) && strings.HasSuffix(f[0], ":") {
		f = f[1:]
	}
	if len(f) == 0 {
		return Command{}, false
	}
	if len(f) > 10 {
		f = f[:10]
	}
	return Command{Name: strings.ToLower(f[0]), Args: f[1:], Line: line}, true
}

func isReplyMarker(w string) bool {
	switch w {
	case "re", "aw", "sv", "fwd", "fw", "antw":
		return true
	}
	return false
}
