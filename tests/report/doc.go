// Package report tests `archiver report` the way an auditor uses it: the built archiver writes
// the page from a real archive, and headless Chromium (through chromedp) opens it from disk.
// It lives in the tests module so the root module does not carry chromedp.
package report
