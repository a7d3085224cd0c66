package org.apache.kafka.common.utils;

/**
 * What connect-basic-auth-extension 4.3.1 asks of Kafka's old AppInfoParser: the version string,
 * now served by org.apache.kafka.common.utils.internals.AppInfoParser (Kafka 4.4). See ../pom.xml.
 */
public final class AppInfoParser {
    private AppInfoParser() {
    }

    public static String getVersion() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
    }
}
