//go:build default_fasthttp && !default_gnet

package all

const buildDefault = "fasthttp"
