package connector

import (
	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
)

// newSecurity returns the Kafka TLS and SASL settings of cfg. The SASL
// password is read again at every new connection.
func newSecurity(cfg *config.Config) (*kafkaconn.Security, error) {
	k := cfg.Kafka
	settings := kafkaconn.Config{
		TLS:       k.TLS,
		CAFile:    k.CAFile,
		CertFile:  k.CertFile,
		KeyFile:   k.KeyFile,
		Mechanism: k.SASL.Mechanism,
		Username:  k.SASL.Username,
	}
	if k.SASL.Mechanism != "" {
		settings.Password = k.SASL.Password.Value
	}
	return kafkaconn.New(settings)
}
