package web

import (
	"net/http"
	"slices"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
)

// maxDepth bounds how far a reply is indented; deeper ones are shown at
// this depth.
const maxDepth = 12

// post is a post as a page shows it: where it sits in its thread, and,
// on pages that show them, its body.
type post struct {
	archive.Entry
	Depth       int    // 0 for a thread's first post, capped at maxDepth
	ParentMsgID string // the post it replies to, "" for none
	Body        *body
}

// nested orders posts as their threads' trees, depth first, replies in
// article order: the thread tree the archive keeps (archive.Parents
// makes it a forest). With byThread the threads come in the order of
// their first post here; a walk of one thread has one root. The walk keeps
// its own stack: nothing recurses on the posts.
func nested(es []archive.Entry, byThread bool) []post {
	parents := archive.Parents(es)
	f := archive.NewForest(es, parents)
	byArticle, children, roots := f.ByArticle, f.Children, f.Roots
	if byThread {
		first := map[int64]int64{}
		for _, e := range es {
			if _, ok := first[e.ThreadID]; !ok {
				first[e.ThreadID] = e.Article
			}
		}
		slices.SortStableFunc(roots, func(x, y int64) int {
			return int(first[byArticle[x].ThreadID] - first[byArticle[y].ThreadID])
		})
	}
	type item struct {
		article int64
		depth   int
	}
	out := make([]post, 0, len(es))
	for _, root := range roots {
		stack := []item{{root, 0}}
		for len(stack) > 0 {
			it := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			e := byArticle[it.article]
			p := post{Entry: e, Depth: min(it.depth, maxDepth)}
			if pa, ok := parents[e.Article]; ok {
				p.ParentMsgID = byArticle[pa].MessageID
			}
			out = append(out, p)
			kids := children[it.article]
			for i := len(kids) - 1; i >= 0; i-- {
				stack = append(stack, item{kids[i], it.depth + 1})
			}
		}
	}
	return out
}

// withBodies reads the posts' bytes and renders their bodies.
func (a *Archive) withBodies(r *http.Request, l lists.List, ps []post) ([]post, error) {
	arts := make([]int64, len(ps))
	for i, p := range ps {
		arts[i] = p.Article
	}
	raws, err := archive.RawOf(r.Context(), a.o.DB, l.ID, arts)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		ps[i].Body = renderBody(raws[ps[i].Article], msgURL(l, ps[i].MessageID))
	}
	return ps, nil
}
