package pipeline

import (
	"cmp"
	"slices"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/reassembly"
	"github.com/tcptap/tcptap/record"
)

// MaxOpenPage bounds a page of open connections: the records one query
// has each worker build, so that a listing of a large table holds a worker
// for a few milliseconds at a time (ask again from the last ID for more).
const MaxOpenPage = 1000

// OpenQuery selects open connections.
type OpenQuery struct {
	From  uint64 // only connections with this ID or higher (one above the last ID of the previous page)
	Limit int    // at most this many; 0 or more than MaxOpenPage: MaxOpenPage
	// AtRisk keeps only connections at risk (classifier.RiskOf): of the
	// cause Risk, or of any cause when Risk is classifier.NoRisk.
	AtRisk bool
	Risk   classifier.Risk
}

// OpenPage is one page of open connections, in increasing ID order.
type OpenPage struct {
	Records []record.Record
	// More reports that connections with higher IDs remain: ask again
	// with From one above the last record's ID.
	More bool
}

// OpenPage builds the worker's part of page q, each connection judged as
// of now (mostly OP: still open) with its risk. It runs in the worker's
// goroutine.
func (w *Worker) OpenPage(q OpenQuery, now int64) OpenPage {
	q.Limit = pageLimit(q.Limit)
	var pg OpenPage
	if !q.AtRisk {
		pg.Records = make([]record.Record, 0, min(q.Limit, w.table.Len()))
	}
	add := func(c *reassembly.Conn) {
		c.EvalTime = max(now, c.LastSeen)
		rec := record.New(c, w.cfg.Classifier.Classify(c), w.cfg.Interface(c))
		rec.SetRisk(classifier.RiskOf(c, now))
		if w.cfg.Fleet != nil {
			w.cfg.Fleet.StampOpen(&rec)
		}
		pg.Records = append(pg.Records, rec)
	}
	if !q.AtRisk {
		pg.More = w.table.EachOpenFrom(q.From, q.Limit, add)
		return pg
	}
	// At-risk connections are on the watch list, which is short; sort
	// what matches by ID and keep the first Limit.
	w.table.EachWatched(func(c *reassembly.Conn) bool {
		if c.ID < q.From {
			return true
		}
		if r, _ := classifier.RiskOf(c, now); r != classifier.NoRisk && (q.Risk == classifier.NoRisk || r == q.Risk) {
			add(c)
		}
		return true
	})
	return cut(pg, q.Limit)
}

// MergePages joins the workers' parts of one page: the first limit records
// by ID.
func MergePages(parts []OpenPage, limit int) OpenPage {
	var pg OpenPage
	for _, p := range parts {
		pg.Records = append(pg.Records, p.Records...)
		pg.More = pg.More || p.More
	}
	return cut(pg, pageLimit(limit))
}

func pageLimit(n int) int {
	if n <= 0 || n > MaxOpenPage {
		return MaxOpenPage
	}
	return n
}

// cut sorts pg by ID and keeps its first limit records.
func cut(pg OpenPage, limit int) OpenPage {
	slices.SortFunc(pg.Records, func(a, b record.Record) int { return cmp.Compare(a.ID, b.ID) })
	if len(pg.Records) > limit {
		pg.Records, pg.More = pg.Records[:limit], true
	}
	return pg
}
