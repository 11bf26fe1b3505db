//go:build default_gnet

package all

const buildDefault = "gnet"
