package offline_test

import (
	"context"
	"fmt"
	"log"

	"github.com/tcptap/tcptap/offline"
	"github.com/tcptap/tcptap/record"
)

// Read a capture and say why each connection ended: what `tcptap read`
// does, from Go.
func ExampleRun() {
	_, err := offline.Run(context.Background(), []string{"../testdata/scenarios/RT-blackhole_tcp4.pcap"}, offline.Options{Workers: 1},
		func(r *record.Record) {
			fmt.Printf("%s -> %s: %s (%s) by the %s, %d retransmissions\n",
				r.Client, r.Server, r.Reason, r.ReasonText, r.Actor, r.Retransmissions.Client)
		})
	if err != nil {
		log.Fatal(err)
	}
	// Unordered output:
	// 10.201.0.1:20016 -> 10.201.0.2:35857: AN (application normal close) by the client, 0 retransmissions
	// 10.201.0.1:20011 -> 10.201.0.2:43453: RT (retransmit timeout) by the client, 5 retransmissions
}
