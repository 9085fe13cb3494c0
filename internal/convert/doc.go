// Package convert turns a keepalived configuration, as read by
// internal/kaconf, into the text of an equivalent vipd YAML file, with
// comments where a reader needs to know something, and a report of
// everything that has no vipd equivalent.
//
// Where keepalived's defaults differ from vipd's (version 2, advert_int 1s,
// priority 100, a script timeout equal to its interval), the converted file
// states keepalived's value, so that it is a correct peer of the original.
// It never runs a program; it only looks for relative script names on a
// fixed PATH of the converting host.
package convert
