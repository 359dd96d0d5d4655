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

// Forest is posts laid out as their threads' trees: each post by its
// article, the replies to each post in article order, and the posts
// that reply to none here.
type Forest struct {
	ByArticle map[int64]Entry
	Children  map[int64][]int64
	Roots     []int64
}

// NewForest lays out es (in article order) by parents, which must be a
// forest (as Parents returns).
func NewForest(es []Entry, parents map[int64]int64) Forest {
	f := Forest{ByArticle: make(map[int64]Entry, len(es)), Children: map[int64][]int64{}}
	for _, e := range es {
		f.ByArticle[e.Article] = e
		if p, ok := parents[e.Article]; ok {
			f.Children[p] = append(f.Children[p], e.Article)
		} else {
			f.Roots = append(f.Roots, e.Article)
		}
	}
	return f
}

// WriteTrees prints each thread as an indented tree, threads in order of
// their first article, replies in article order. parents must be a forest
// (as Parents returns); the walk uses an explicit stack.
func WriteTrees(w io.Writer, es []Entry, parents map[int64]int64) error {
	f := NewForest(es, parents)
	byArticle, children, roots := f.ByArticle, f.Children, f.Roots
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
