package reassembly

// The part of Zeek's TCP_Reassembler every connection uses: which bytes
// were delivered, acknowledged or lost, for the history's gap (g) letter
// and the byte counts. It keeps block lists only, never payload.

// size is TCP_Endpoint::Size for endpoint i, the payload size conn.log
// reports.
func (o *zeekOp) size(i int) uint64 {
	e, peer := &o.z.ep[i], &o.z.ep[1-i]
	if e.prevState == ZeekSynSent && e.state == ZeekReset && peer.state == ZeekInactive && !o.noDataAcked(i) {
		return 0 // a half-open connection discovered and aborted
	}
	last := uint64(o.seqWraps(i))<<32 | uint64(e.lastSeq)
	ack := uint64(o.ackWraps(i))<<32 | uint64(e.ackSeq)
	top := ack
	if last > ack {
		top = last
	}
	size := top - uint64(e.startSeq)
	if size != 0 {
		size-- // the SYN
	}
	if e.has(zeFIN) && size != 0 {
		size-- // the FIN
	}
	return size
}

// noDataAcked is TCP_Endpoint::NoDataAcked for endpoint i.
func (o *zeekOp) noDataAcked(i int) bool {
	e := &o.z.ep[i]
	ack, start := uint64(e.ackSeq), uint64(e.startSeq)
	if e.flags&zeRare != 0 {
		ack |= uint64(o.liveRare(i).ackWraps) << 32
	}
	return ack == start || ack == start+1
}

// ackReceived is TCP_Reassembler::AckReceived for endpoint j, whose data the
// peer acknowledged up to relative sequence seq.
func (o *zeekOp) ackReceived(j int, seq uint64) {
	e := &o.z.ep[j]
	if e.has(zeFIN) && seq >= o.finSeq(j) {
		seq = o.finSeq(j) - 1 // don't count the FIN octet
	}
	if seq <= e.trimSeq {
		return
	}
	o.trimToSeq(j, seq)
}

// trimToSeq is Reassembler::TrimToSeq (DataBlockList::Trim): acked data that
// was never delivered is undelivered, i.e. a gap.
func (o *zeekOp) trimToSeq(j int, seq uint64) {
	e := &o.z.ep[j]
	if seq > e.lastReassem {
		o.undelivered(j, seq)
	}
	if seq > e.trimSeq {
		e.trimSeq = seq
	}
}

// undelivered is TCP_Reassembler::Undelivered.
func (o *zeekOp) undelivered(j int, upTo uint64) {
	e := &o.z.ep[j]
	if upTo <= 2 && o.z.has(zcPartial) {
		// The faked initial sequence of a partial connection.
		return
	}
	if !e.has(zeSkip) {
		// Deliver the buffered blocks that start at or below upTo,
		// reporting the hole before each. (A block that starts exactly at
		// upTo is delivered here rather than left for a later call, which
		// would report an empty hole: Zeek's ftp/bigtransfer baseline
		// counts fewer than ten gaps where that reading gives eleven.)
		for o.nblocks(j) > 0 && o.rare.ep[j].blocks[0].lo <= upTo {
			r := &o.rare.ep[j]
			b := r.blocks[0]
			if b.lo > e.lastReassem {
				o.gap(j)
			}
			r.popBlock()
			if b.hi > e.lastReassem {
				e.lastReassem = b.hi
			}
			o.mergeDelivered(j)
		}
		if upTo > e.lastReassem {
			o.gap(j)
		}
	}
	if upTo > e.lastReassem {
		e.lastReassem = upTo
	}
}

// gap is TCP_Reassembler::Gap: the 'g' letter counts only while both sides are
// established or closing cleanly.
func (o *zeekOp) gap(j int) {
	if zeekIsClean(&o.z.ep[j]) && zeekIsClean(&o.z.ep[1-j]) {
		r := o.rareEnd(j)
		o.scaled(j, 'G', &r.gapCnt, &r.gapThresh)
	}
}

func zeekIsClean(e *zeekEnd) bool {
	return e.state == ZeekEstablished || (e.state == ZeekClosed && e.prevState == ZeekEstablished)
}

// dataSent is TCP_Endpoint::DataSent with TCP_Reassembler::DataSent.
func (o *zeekOp) dataSent(i int, seq, length uint64, captured bool) {
	e := &o.z.ep[i]
	if !captured || e.has(zeSkip) {
		return // truncated_tcp_payload, or skip_deliveries
	}
	ack := (uint64(o.ackWraps(i))<<32 | uint64(e.ackSeq)) - uint64(e.startSeq)
	upper := seq + length
	if seq < ack {
		if upper <= ack {
			return // already delivered and acked
		}
		seq = ack
	}
	o.newBlock(i, seq, upper)

	if o.noDataAcked(i) && o.undeliveredBytes(i) > zeekMaxAboveHoleNoAcks {
		o.skipDeliveries(i) // above_hole_data_without_any_acks
	}
	if o.dataSize(i) > zeekExcessiveDataNoAcks {
		o.skipDeliveries(i) // excessive_data_without_further_acks
	}
}

// skipDeliveries drops endpoint i's buffered blocks and skips its data from
// now on.
func (o *zeekOp) skipDeliveries(i int) {
	if o.z.ep[i].has(zeRare) {
		o.rareIf().ep[i].nblocks = 0
	}
	o.z.ep[i].flags |= zeSkip
}

// newBlock is Reassembler::NewBlock with TCP_Reassembler::BlockInserted.
func (o *zeekOp) newBlock(i int, lo, hi uint64) {
	e := &o.z.ep[i]
	if hi <= e.trimSeq {
		return // old data
	}
	if lo < e.trimSeq {
		lo = e.trimSeq
	}
	if lo > e.lastReassem {
		o.rareLive(i).insertBlock(lo, hi)
		return
	}
	if hi <= e.lastReassem {
		return // already delivered
	}
	e.lastReassem = hi
	o.mergeDelivered(i)
	if o.noDataAcked(i) && o.size(i) > zeekMaxInitialWindow {
		// Much data and no acks: presume the acks are not visible and
		// stop holding delivered data.
		o.trimToSeq(i, e.lastReassem)
	}
}

// mergeDelivered delivers endpoint i's buffered blocks that now touch
// lastReassem.
func (o *zeekOp) mergeDelivered(i int) {
	e := &o.z.ep[i]
	if e.flags&zeRare == 0 {
		return // no blocks
	}
	r := o.liveRare(i)
	for r.nblocks > 0 && r.blocks[0].lo <= e.lastReassem {
		if r.blocks[0].hi > e.lastReassem {
			e.lastReassem = r.blocks[0].hi
		}
		r.popBlock()
	}
}

func (e *zeekRareEnd) popBlock() {
	copy(e.blocks[:], e.blocks[1:e.nblocks])
	e.nblocks--
}

// insertBlock adds [lo, hi) to the sorted, disjoint out-of-order ranges,
// merging overlapping or adjacent ones. When full, the two ranges with the
// smallest hole between them are merged.
func (e *zeekRareEnd) insertBlock(lo, hi uint64) {
	n := int(e.nblocks)
	// Find the insertion point and merge overlaps.
	k := 0
	for k < n && e.blocks[k].hi < lo {
		k++
	}
	j := k
	for j < n && e.blocks[j].lo <= hi {
		if e.blocks[j].lo < lo {
			lo = e.blocks[j].lo
		}
		if e.blocks[j].hi > hi {
			hi = e.blocks[j].hi
		}
		j++
	}
	// Replace blocks[k:j] with the merged range.
	merged := j - k
	switch {
	case merged == 0:
		if n == zeekMaxBlocks {
			e.squeeze()
			e.insertBlock(lo, hi)
			return
		}
		copy(e.blocks[k+1:n+1], e.blocks[k:n])
		n++
	case merged > 1:
		copy(e.blocks[k+1:], e.blocks[j:n])
		n -= merged - 1
	}
	e.blocks[k] = zeekRange{lo, hi}
	e.nblocks = uint8(n)
}

// squeeze merges the two adjacent ranges with the smallest hole.
func (e *zeekRareEnd) squeeze() {
	n := int(e.nblocks)
	best := 0
	for k := 1; k < n-1; k++ {
		if e.blocks[k+1].lo-e.blocks[k].hi < e.blocks[best+1].lo-e.blocks[best].hi {
			best = k
		}
	}
	e.blocks[best].hi = e.blocks[best+1].hi
	copy(e.blocks[best+1:], e.blocks[best+2:n])
	e.nblocks--
}

// undeliveredBytes is TCP_Reassembler::NumUndeliveredBytes for endpoint i.
func (o *zeekOp) undeliveredBytes(i int) uint64 {
	n := o.nblocks(i)
	if n == 0 {
		return 0
	}
	return o.rare.ep[i].blocks[n-1].hi - o.z.ep[i].lastReassem
}

// dataSize approximates DataBlockList::DataSize for endpoint i: delivered
// but unacked data plus the buffered ranges.
func (o *zeekOp) dataSize(i int) uint64 {
	e := &o.z.ep[i]
	var s uint64
	if e.lastReassem > e.trimSeq {
		s = e.lastReassem - e.trimSeq
	}
	if e.flags&zeRare != 0 {
		r := o.liveRare(i)
		for k := 0; k < int(r.nblocks); k++ {
			s += r.blocks[k].hi - r.blocks[k].lo
		}
	}
	return s
}
