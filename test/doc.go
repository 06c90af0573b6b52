// Package test holds agentg's end-to-end tests: a real proxy listener, real
// upstream servers on loopback, and real clients (Go's net/http with a
// proxy URL, curl when installed, raw TCP for input no well-behaved client
// sends). Test host names reach loopback through the policy's static
// resolve table, never through /etc/hosts or DNS.
package test
