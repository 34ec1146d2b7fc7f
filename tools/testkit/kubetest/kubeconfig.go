package kubetest

import (
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes a kubeconfig to path that reaches the API server
// with token, for programs run by a test (helm, a component, the CLI).
// user names the credentials in the file.
func (e *Env) WriteKubeconfig(path, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: e.Config.Host, CertificateAuthorityData: e.Config.CAData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: user}
	cfg.CurrentContext = "kubetest"
	return clientcmd.WriteToFile(*cfg, path)
}

// AdminKubeconfig writes a cluster-admin kubeconfig into the Env's folder
// and returns its path.
func (e *Env) AdminKubeconfig() (string, error) {
	path := filepath.Join(e.Dir, "admin.kubeconfig")
	return path, e.WriteKubeconfig(path, "admin", e.Config.BearerToken)
}
