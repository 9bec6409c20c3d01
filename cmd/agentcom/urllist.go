package main

import (
	"fmt"
	"strings"
)

// maxURLs bounds a URL list flag: a cluster is a handful of hubs.
const maxURLs = 32

// urlList is a flag that takes several URLs, comma-separated, repeated, or
// both (--hub http://a,http://b --hub http://c).
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(s string) error {
	for _, u := range splitComma(s) {
		if len(*l) == maxURLs {
			return fmt.Errorf("at most %d URLs", maxURLs)
		}
		*l = append(*l, u)
	}
	return nil
}
