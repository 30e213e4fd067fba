// Package browsertest drives the admin package's pages in headless
// Chromium (chromedp): sign-in, a flush through the forms, escaping,
// cross-origin refusal. It is its own module so that chromedp stays out
// of the library's dependencies; it ships nothing.
//
// The test skips with one line where Chromium is not installed (make test
// installs it with apt-get when run as root). With KV_ADMIN_SCREENSHOTS
// set to a directory it writes a screenshot of each page there (make
// admin-screenshots refreshes docs/admin).
package browsertest
