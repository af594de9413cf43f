package classifier_test

import (
	"fmt"
	"time"

	"github.com/tcptap/tcptap/classifier"
	"github.com/tcptap/tcptap/reassembly"
)

// Classify a connection whose client retransmitted the same data five
// times with doubling gaps, the last at 6.2 s, and then fell silent: the
// verdict depends on how long the silence has lasted when it is judged.
func ExampleClassifier_Classify() {
	k := classifier.New(classifier.Config{})
	c := &reassembly.Conn{Established: true}
	cl := &c.Ends[reassembly.Client]
	cl.Retransmits = reassembly.Run{Count: 5, First: int64(200 * time.Millisecond), Last: int64(6200 * time.Millisecond),
		MinGap: int64(400 * time.Millisecond), MaxGap: int64(3200 * time.Millisecond), LastGap: int64(3200 * time.Millisecond)}
	cl.LastNonRST = int64(6200 * time.Millisecond)
	for _, at := range []time.Duration{10 * time.Second, 15 * time.Second} {
		c.EvalTime = int64(at)
		res := k.Classify(c)
		fmt.Printf("at %v: %s (%s)\n", at, res.Reason, res.Reason.Text())
	}
	// Output:
	// at 10s: OP (still open)
	// at 15s: RT (retransmit timeout)
}
