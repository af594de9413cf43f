// Package netlab is a test harness that makes real Linux TCP traffic between
// network namespaces and captures it the way tcptap sees it on a mirror port.
//
// [New] builds three namespaces per lab:
//
//	  client ns                tap ns                      server ns
//	+-------------+   +---------------------------+   +-------------+
//	| eth0        |   |  vc ------- br0 ------ vs |   |        eth0 |
//	| 10.201.0.1  +---+  |  nft bridge filter     +---+  10.201.0.2 |
//	| fd00:201::1 |   |  |  (forward hook)        |   | fd00:201::2 |
//	+-------------+   +--|------------------------+   +-------------+
//	                     tcpdump: the mirror port facing the client
//
// The client and the server sit on one on-link subnet (10.201.0.0/24 and
// fd00:201::/64); there are no other addresses, no default routes and no
// links out of the namespaces, so nothing a test sends can leave the lab.
// The tap namespace holds a Linux bridge whose port vc faces the client and
// vs faces the server; [Lab.StartCapture] runs tcpdump on vc by default, the
// "mirror port" of the switch. Faults are nftables rules in the tap
// namespace's bridge forward hook ([Lab.Drop], [Lab.Loss], [Lab.Blackhole]),
// inet-family reject rules in an end host ([Lab.RejectWithReset]) and link
// state ([Lab.SetLink]). Rules carry nft handles so they can be added and
// removed while a connection is running.
//
// To make captures look like a real wire, New turns off TSO, GSO, GRO,
// scatter-gather and TX checksum offload on every veth with the legacy
// SIOCETHTOOL ioctls (no ethtool binary needed): captured segments are at
// most MTU sized and carry correct checksums. It also installs permanent
// neighbour entries (MAC addresses 02:74:74:00:00:01 for the client and
// 02:74:74:00:00:02 for the server), so no ARP or neighbour discovery runs and
// a blackhole never starves the neighbour cache; IPv6 addresses are added
// with nodad and DAD is off, so IPv6 works at once; IPv6 is disabled in the
// tap namespace so the bridge itself stays silent.
//
// Sockets are opened from the test process itself: [Namespace.Do] runs a
// function on an OS thread switched into the namespace with setns(2), and
// [Namespace.ListenTCP] and [Namespace.DialTCP] create their sockets that
// way. A socket belongs to the namespace it was created in for its whole life
// (accepted sockets inherit the listener's), so once created it is used from
// any goroutine like any other net.Conn.
//
// Namespaces are named tt-PID-N-{c,t,s} (PID of the test process, N a
// per-process counter), so parallel tests and parallel test binaries never
// collide. Everything a lab creates is removed by t.Cleanup: tcpdump is
// stopped and reaped, the namespaces are deleted (nft tables live inside them
// and go with them). Child processes get SIGKILL as their parent-death
// signal, so even a test binary killed by -timeout leaves no tcpdump behind;
// its namespaces are deleted by [CleanupStale], which the first New of every
// process runs for tt-* namespaces whose creating process is gone.
//
// Tests call [Require] first (New does too): without root or the tools it
// skips, or fails when the CI environment variable is set. Set NETLAB_PCAP_DIR
// to keep the pcap files of relative capture names in that directory instead
// of the test's temporary directory.
package netlab
