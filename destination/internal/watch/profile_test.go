package watch

import "testing"

func TestProfiles(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	const webProfile = `
profile "web.emojivoto.svc.cluster.local" opaque=false budget=0.3/5/20s
  route "GET /api/list" retryable=true timeout=300ms classes=1`
	for _, path := range []string{"web.emojivoto.svc.cluster.local:80", "10.96.0.10:80"} {
		t.Run(path, func(t *testing.T) {
			e.getProfile(path, "").expect(webProfile)
		})
	}
	t.Run("defaults without a ServiceProfile", func(t *testing.T) {
		e.getProfile("misc.emojivoto.svc.cluster.local:80", "").expect(`profile "misc.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s`)
	})
	t.Run("opaque by the default list", func(t *testing.T) {
		e.getProfile("db.emojivoto.svc.cluster.local:5432", "").expect(`profile "db.emojivoto.svc.cluster.local" opaque=true budget=0.2/10/10s`)
		e.getProfile("192.0.2.1:3306", "").expect(`profile "" opaque=true budget=0.2/10/10s`)
		e.getProfile("192.0.2.1:80", "").expect(`profile "" opaque=false budget=0.2/10/10s`)
	})
	t.Run("a pod IP has its endpoint", func(t *testing.T) {
		e.getProfile("10.1.0.1:8080", "").expect(`
profile "" opaque=false budget=0.2/10/10s
  endpoint 10.1.0.1:8080 id=` + webID + ` h2 {deployment=web,pod=web-1,pod_template_hash=5d8f,serviceaccount=web}`)
	})
	t.Run("a StatefulSet pod has its endpoint", func(t *testing.T) {
		e.getProfile("db-1.db.emojivoto.svc.cluster.local:5432", "").expect(`
profile "db.emojivoto.svc.cluster.local" opaque=true budget=0.2/10/10s
  endpoint 10.1.1.1:5432 opaque(0) {pod=db-1,serviceaccount=db,statefulset=db}`)
	})
	t.Run("unknown service", func(t *testing.T) {
		e.getProfile("nope.emojivoto.svc.cluster.local:80", "").expect(`profile "" opaque=false budget=0.2/10/10s`)
	})
}

func TestProfileChangesMidStream(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	s := e.getProfile("misc.emojivoto.svc.cluster.local:80", "")
	s.expect(`profile "misc.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s`)

	// Created.
	e.apply(`
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: misc.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
  - name: POST /x
    condition: {method: POST}
  dstOverrides:
  - {authority: misc-v2.emojivoto.svc.cluster.local:80, weight: 900m}
  - {authority: misc.emojivoto.svc.cluster.local:80, weight: 100m}
`)
	s.expect(`
profile "misc.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s
  route "POST /x" retryable=false timeout=0s classes=0
  split misc-v2.emojivoto.svc.cluster.local:80 9000
  split misc.emojivoto.svc.cluster.local:80 1000`)

	// Updated: a route whose regex does not compile is left out.
	e.apply(`
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: misc.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
  - name: bad
    condition: {pathRegex: "(["}
  - name: GET /y
    condition:
      all: [{method: GET}, {not: {pathRegex: /admin.*}}]
    timeout: 1s
`)
	s.expect(`
profile "misc.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s
  route "GET /y" retryable=false timeout=1s classes=0`)

	// The Service's annotation makes the port opaque: no routes.
	e.apply(`
apiVersion: v1
kind: Service
metadata:
  name: misc
  namespace: emojivoto
  annotations: {config.linkerd.io/opaque-ports: "80"}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, targetPort: 9090}]
`)
	s.expect(`profile "misc.emojivoto.svc.cluster.local" opaque=true budget=0.2/10/10s`)
	e.apply(`
apiVersion: v1
kind: Service
metadata: {name: misc, namespace: emojivoto}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, targetPort: 9090}]
`)
	s.expect(`
profile "misc.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s
  route "GET /y" retryable=false timeout=1s classes=0`)

	// Deleted: back to the defaults.
	e.remove("ServiceProfile", "emojivoto", "misc.emojivoto.svc.cluster.local")
	s.expect(`profile "misc.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s`)
}

func TestClientNamespaceProfileWins(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	server := e.getProfile("web.emojivoto.svc.cluster.local:80", "")
	client := e.getProfile("web.emojivoto.svc.cluster.local:80", "clients")
	same := e.getProfile("web.emojivoto.svc.cluster.local:80", "emojivoto")
	const serverSide = `
profile "web.emojivoto.svc.cluster.local" opaque=false budget=0.3/5/20s
  route "GET /api/list" retryable=true timeout=300ms classes=1`
	server.expect(serverSide)
	client.expect(serverSide)
	same.expect(serverSide)

	e.apply(`
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.emojivoto.svc.cluster.local, namespace: clients}
spec:
  routes:
  - name: client view
    condition: {method: GET}
    timeout: 2s
`)
	client.expect(`
profile "web.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s
  route "client view" retryable=false timeout=2s classes=0`)
	e.remove("ServiceProfile", "clients", "web.emojivoto.svc.cluster.local")
	client.expect(serverSide)

	// The other streams saw none of it: their next update is this one.
	e.remove("ServiceProfile", "emojivoto", "web.emojivoto.svc.cluster.local")
	const defaults = `profile "web.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s`
	server.expect(defaults)
	same.expect(defaults)
	client.expect(defaults)
}
