# The cookbook's shop client: two customers go shopping.
import Pyro4

ns = Pyro4.locateNS()
uri = ns.lookup("example.shop.Shop")
shop = Pyro4.Proxy(uri)
shop_name = shop.name()


def go_shopping(customer, deposits, price=None):
    print("*** %s is doing shopping with %s:" % (customer, shop_name))
    shop.logOn(customer)
    for amount in deposits:
        shop.deposit(customer, amount)
        print("deposit %d, balance=%.2f" % (amount, shop.balance(customer)))
    if price is not None:
        print("%s is buying something for %d$" % (customer, price))
        shop.buy(customer, price)
    try:
        shop.buy(customer, 1000)
    except Exception as x:
        print("%s cannot buy a car: %s: %s" % (customer, type(x).__name__, x))
    shop.logOut(customer)


go_shopping("Rashmi", [100], 37)
go_shopping("Meeta", [50, 50])
print("The accounts in the %s:" % shop_name)
accounts = shop.allAccounts()
for name in sorted(accounts):
    print(" %s : %.2f" % (name, accounts[name]))
