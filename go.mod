module github.com/wsbind/wsbind

go 1.26
