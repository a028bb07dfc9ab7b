module github.com/autonomics/autonomics

go 1.26.0
