module kproxy.test/agnhost

go 1.22
