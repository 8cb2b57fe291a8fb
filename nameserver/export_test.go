package nameserver

// withCleaned makes autoclean send each name it removes to c.
func withCleaned(c chan<- string) Option { return func(cfg *Config) { cfg.cleaned = c } }
