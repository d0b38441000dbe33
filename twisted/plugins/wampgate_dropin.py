from twisted.application.service import ServiceMaker

wampgate = ServiceMaker("Wampgate", "wampgate.tx.tap", "A secure WAMP router (pub/sub broker, RPC dealer)", "wampgate")
