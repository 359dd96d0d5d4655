package mailmsg

import "strings"

// Unflow undoes format=flowed (RFC 3676): a line that ends in a space
// (a soft break) joins the next line of the same quote depth, space
// stuffing is removed, and with delsp=yes the space before a soft break
// goes too. The signature separator "-- " is never joined. Quoted lines
// come back as "> " per level. Lines end in LF.
func Unflow(text string, delsp bool) string {
	var out strings.Builder
	var para strings.Builder
	depth, open := 0, false
	flush := func() {
		if !open {
			return
		}
		if depth > 0 {
			out.WriteString(strings.Repeat(">", depth) + " ")
		}
		out.WriteString(para.String())
		out.WriteByte('\n')
		para.Reset()
		open = false
	}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		d := 0
		for d < len(line) && line[d] == '>' {
			d++
		}
		content := strings.TrimPrefix(line[d:], " ") // space stuffing
		if open && d != depth {
			flush()
		}
		depth, open = d, true
		soft := strings.HasSuffix(content, " ") && content != "-- "
		if soft && delsp {
			content = content[:len(content)-1]
		}
		para.WriteString(content)
		if !soft {
			flush()
		}
	}
	flush()
	return strings.TrimSuffix(out.String(), "\n")
}
