// Package monitoring holds livehook's monitoring mixin for the archiver, as files: Prometheus alert
// rules (alerts.yaml), recording rules (rules.yaml), their promtool unit tests (tests/) and a
// Grafana dashboard (dashboards/). The package's tests check them with promtool and against the
// metrics an archiver actually exposes; there is no Go code to import.
package monitoring
