package archive

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// maxIndent bounds how far a deep thread is indented; deeper replies are
// printed at this depth with their real depth shown.
const maxIndent = 24

// WriteTrees prints each thread as an indented tree, threads in order of
// their first article, replies in article order. parents must be a forest
// (as Parents returns); the walk uses an explicit stack.
func WriteTrees(w io.Writer, es []Entry, parents map[int64]int64) error {
	byArticle := make(map[int64]Entry, len(es))
	children := map[int64][]int64{}
	var roots []int64
	for _, e := range es {
		byArticle[e.Article] = e
		if p, ok := parents[e.Article]; ok {
			children[p] = append(children[p], e.Article)
		} else {
			roots = append(roots, e.Article)
		}
	}
	sort.Slice(roots, func(i, j int) bool {
		ti, tj := byArticle[roots[i]].ThreadID, byArticle[roots[j]].ThreadID
		if ti != tj {
			return ti < tj
		}
		return roots[i] < roots[j]
	})
	type item struct {
		article int64
		depth   int
	}
	lastThread := int64(-1)
	for _, r := range roots {
		if t := byArticle[r].ThreadID; t != lastThread {
			if lastThread >= 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "thread %d\n", t)
			lastThread = t
		}
		stack := []item{{r, 0}}
		for len(stack) > 0 {
			it := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			e := byArticle[it.article]
			indent := strings.Repeat("  ", min(it.depth, maxIndent)+1)
			mark := ""
			if it.depth > maxIndent {
				mark = fmt.Sprintf("(depth %d) ", it.depth)
			}
			if _, err := fmt.Fprintf(w, "%s%s[%d] %s — %s\n", indent, mark, e.Article, e.Subject, e.From); err != nil {
				return err
			}
			kids := children[it.article]
			for i := len(kids) - 1; i >= 0; i-- {
				stack = append(stack, item{kids[i], it.depth + 1})
			}
		}
	}
	return nil
}
