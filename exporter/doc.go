// Package exporter turns records into what users read: the switch vendor's
// cache-connection table and its legend, the at-risk view, per-reason
// summaries, the cache-packet and information views, the pcap writer and
// JSON Lines; exporter/metrics, exporter/web and exporter/output are the
// Prometheus collectors, the HTTP server and the record outputs. The
// record itself is package record.
package exporter
