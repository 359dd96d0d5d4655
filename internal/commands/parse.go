// Package commands owns list administration by email: the -request,
// -join, -leave, -confirm and -owner addresses. It parses command mail,
// runs the commands with confirmation (nobody is subscribed or
// unsubscribed on the strength of a From: line alone), and answers once
// per message, carefully: never to robots, never in a loop, and at most a
// few times a day per address.
package commands

import (
	"strings"
	"unicode"

	"github.com/parley-list/parley/internal/mailmsg"
)

// Command is one parsed command line.
type Command struct {
	Name string   // lower case
	Args []string // as written, at most 9
	Rest string   // the line after the command word, whole ("reject 4 off topic, see the FAQ")
	Line string   // the line, cleaned of control bytes, for the reply
}

// Parsed is what Parse found in a message.
type Parsed struct {
	Commands []Command
	// Ignored are the lines read that were not commands (the Subject
	// and greetings aside), cleaned, at most MaxProse.
	Ignored []string
}

// Bounds of Parse.
const (
	MaxLines = 50 // command lines read
	MaxProse = 3  // lines that are not commands before Parse stops reading
)

// known are the command words: a line is a command only when it starts
// with one. Anything else is prose ("Hi, please add me"), which is never
// answered as an unknown command.
var known = map[string]bool{
	"subscribe": true, "join": true, "unsubscribe": true, "leave": true, "signoff": true,
	"confirm": true, "set": true, "who": true, "password": true, "info": true, "lists": true, "help": true,
	"approve": true, "reject": true, "discard": true, "held": true, "add": true, "remove": true,
	"ban": true, "unban": true, "moderate": true, "members": true,
	"sub": true, "refuse": true,
}

// Words that open or close a letter. A greeting is skipped; a closing
// ends the commands (a signature follows it).
var (
	greetings = map[string]bool{"hi": true, "hello": true, "hey": true, "dear": true, "greetings": true,
		"good": true, "hallo": true, "bonjour": true, "hola": true, "ciao": true, "morning": true}
	closings = map[string]bool{"thanks": true, "thank": true, "thx": true, "regards": true, "cheers": true,
		"best": true, "sincerely": true, "kind": true, "warm": true, "yours": true, "cordially": true,
		"sent": true, "br": true, "end": true, "stop": true}
)

// Parse reads commands from a subject and a text body, one per line,
// case-insensitive. The Subject counts only when it is a command ("Re:
// question" is not). In the body it skips quoted lines (">") and
// greetings, and stops at a signature ("-- "), a closing ("Thanks,"), a
// quoted original ("On … wrote:", "-----Original Message-----"), an
// "end" line, after MaxProse lines that are not commands, or after
// MaxLines commands. A command given twice is returned once. It never
// fails.
func Parse(subject, body string) Parsed {
	var p Parsed
	seen := map[string]bool{}
	add := func(c Command) {
		if k := c.key(); !seen[k] {
			seen[k] = true
			p.Commands = append(p.Commands, c)
		}
	}
	if c, ok := parseLine(subject); ok && known[c.Name] {
		add(c)
	}
	lines := 0
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		if line == "-- " || line == "--" || endsCommands(t) {
			break
		}
		if t == "" || strings.HasPrefix(t, ">") {
			continue
		}
		c, ok := parseLine(t)
		if !ok {
			continue
		}
		word := strings.TrimFunc(c.Name, unicode.IsPunct)
		switch {
		case known[c.Name]:
			if lines++; lines > MaxLines {
				return p
			}
			add(c)
		case closings[word]:
			return p
		case greetings[word]:
		default:
			if p.Ignored = append(p.Ignored, mailmsg.Clean(c.Line, 72)); len(p.Ignored) >= MaxProse {
				return p
			}
		}
	}
	return p
}

// endsCommands reports whether a line begins a quoted original.
func endsCommands(t string) bool {
	return strings.HasPrefix(t, "-----") || strings.HasPrefix(t, "________") ||
		strings.HasPrefix(t, "On ") && strings.HasSuffix(t, "wrote:")
}

// key identifies a command for running it once: the same word (or its
// synonym) with the same arguments.
func (c Command) key() string {
	name := c.Name
	switch name {
	case "join":
		name = "subscribe"
	case "leave", "signoff":
		name = "unsubscribe"
	}
	return name + " " + strings.ToLower(strings.Join(c.Args, " "))
}

// parseLine splits one line into a command and its arguments.
func parseLine(line string) (Command, bool) {
	if i := strings.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i] // one line only (a subject could carry a break)
	}
	// Clean: control bytes and invalid UTF-8 are never echoed back.
	line = mailmsg.Clean(line, 500)
	rest := line
	var word string
	// A reply's subject: "Re: confirm abc" is the command "confirm abc".
	for {
		word, rest = cutWord(rest)
		if !strings.HasSuffix(word, ":") || !isReplyMarker(strings.ToLower(strings.TrimSuffix(word, ":"))) {
			break
		}
	}
	if word == "" {
		return Command{}, false
	}
	args := strings.Fields(rest)
	if len(args) > 9 {
		args = args[:9]
	}
	return Command{Name: strings.ToLower(word), Args: args, Rest: rest, Line: line}, true
}

// cutWord returns the first word of s and what follows it, trimmed.
func cutWord(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		return s[:i], strings.TrimSpace(s[i:])
	}
	return s, ""
}

func isReplyMarker(w string) bool {
	switch w {
	case "re", "aw", "sv", "fwd", "fw", "antw", "vs", "wg", "tr":
		return true
	}
	return false
}
